"""`python -m siliconlab ...` — the same CLI as the `siliconlab` script (for machines where it is not installed)."""

from siliconlab.cli import app

if __name__ == "__main__":
    app(prog_name="siliconlab")
