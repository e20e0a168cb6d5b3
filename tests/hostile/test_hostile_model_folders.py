"""Model folders built to run code or to write outside --out (issue 24, items 3 and 10).

A folder that maps classes to its own Python (`auto_map`) is refused in one line (exit 2), whatever waits on
stdin: the module would write a marker file when imported, and the marker must never appear. A model path
ending in `..` names its artifact folder after the model, inside --out.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "siliconlab"

#: Folders whose from_pretrained calls this check skips: none (every call passes the flag).
OWNED_ELSEWHERE: tuple[str, ...] = ()


def _evil_folder(root: Path, marker: Path, tiny_bert: Path, where: str) -> Path:
    """A copy of a tiny BERT whose config (or tokenizer config) maps a class to `evil.py`."""
    folder = root / f"evil-{where}"
    shutil.copytree(tiny_bert, folder)
    (folder / "evil.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
        "from transformers import BertConfig, BertModel, BertTokenizerFast\n"
        "class EvilConfig(BertConfig):\n    model_type = 'evilbert'\n"
        "class EvilModel(BertModel):\n    config_class = EvilConfig\n"
        "class EvilTokenizer(BertTokenizerFast):\n    pass\n"
    )
    if where == "config":
        config = json.loads((folder / "config.json").read_text())
        config |= {"model_type": "evilbert", "architectures": ["EvilModel"],
                   "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}}  # fmt: skip
        (folder / "config.json").write_text(json.dumps(config))
    else:
        tokenizer = json.loads((folder / "tokenizer_config.json").read_text())
        tokenizer["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", "evil.EvilTokenizer"]}
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer))
    return folder


def _siliconlab(*args: str, cache: Path) -> subprocess.CompletedProcess:
    """The CLI in a child process with `y` waiting on stdin: any prompt transformers showed would be accepted."""
    env = {**os.environ, "SILICONLAB_CACHE": str(cache), "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "siliconlab", *args], input=b"y\ny\ny\n", env=env, capture_output=True, timeout=300
    )


@pytest.mark.parametrize("where", ["config", "tokenizer"])
def test_a_folder_with_its_own_code_is_refused_and_nothing_is_imported(
    tiny_bert: Path, tmp_path: Path, where: str
) -> None:
    marker = tmp_path / "marker.txt"
    folder = _evil_folder(tmp_path, marker, tiny_bert, where)
    runs = {
        "convert": ("convert", str(folder), "--units", "torch-cpu-fp32", "--out", str(tmp_path / "out")),
        "batch": (
            "batch",
            str(folder),
            "--input",
            str(tmp_path / "in.jsonl"),
            "--out",
            str(tmp_path / "o.jsonl"),
            "--unit",
            "torch-cpu-fp32",
        ),  # fmt: skip
    }
    (tmp_path / "in.jsonl").write_text('{"text": "hello"}\n')
    for name, args in runs.items():
        done = _siliconlab(*args, cache=tmp_path / "cache")
        stderr = done.stderr.decode()
        assert done.returncode == 2, (name, stderr)
        assert "asks to run its own Python code" in stderr and "auto_map" in stderr, (name, stderr)
        assert "Traceback" not in stderr and "[y/N]" not in done.stdout.decode() + stderr
        assert not marker.exists(), f"{name} imported the folder's code"
    assert not (tmp_path / "out" / folder.name).exists()


def test_the_api_refuses_it_too(tiny_bert: Path, tmp_path: Path) -> None:
    from siliconlab.errors import UsageError
    from siliconlab.tasks import load

    marker = tmp_path / "marker.txt"
    folder = _evil_folder(tmp_path, marker, tiny_bert, "config")
    with pytest.raises(UsageError, match="auto_map"):
        load(str(folder), unit="torch-cpu-fp32", cache=tmp_path / "cache")
    assert not marker.exists()


def test_every_from_pretrained_call_turns_remote_code_off() -> None:
    """Static: each `X.from_pretrained(...)` in siliconlab passes trust_remote_code=False (or forwards **kwargs
    that carry it): with None, transformers prompts on a terminal."""
    missing = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith(OWNED_ELSEWHERE):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "from_pretrained":
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            off = isinstance(keywords.get("trust_remote_code"), ast.Constant) and (
                keywords["trust_remote_code"].value is False
            )
            if not off and None not in keywords:  # None: a **kwargs splat (checked where it is built)
                missing.append(f"{relative}:{node.lineno}")
    assert not missing, f"from_pretrained without trust_remote_code=False: {missing}"


@pytest.mark.parametrize("spelling", ["mine/model/..", "mine/model/sub/../..", "mine/."])
def test_a_model_path_with_dots_writes_inside_out(tiny_bert: Path, tmp_path: Path, spelling: str) -> None:
    """`mine/model/..` used to name the model `..`: its artifacts went to OUT/../<unit>."""
    shutil.copytree(tiny_bert, tmp_path / "models" / "mine")
    (tmp_path / "models" / "mine" / "model" / "sub").mkdir(parents=True)
    out = tmp_path / "models" / "out"
    spec = str(tmp_path / "models" / spelling)
    done = _siliconlab("convert", spec, "--units", "torch-cpu-fp32", "--out", str(out), cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr.decode()
    written = list(tmp_path.rglob("manifest.json"))
    assert [p.relative_to(out).parts[:2] for p in written] == [("mine", "torch-cpu-fp32")]


@pytest.mark.parametrize("name", ["..", ".", "", "../../etc", "a\\..\\..", "owner/name", ".hidden"])
def test_model_folder_names_stay_one_folder_inside_out(name: str) -> None:
    from types import SimpleNamespace

    from siliconlab.convert.pipeline import model_folder_name

    folder = model_folder_name(SimpleNamespace(name=name))  # type: ignore[arg-type]
    assert folder and not folder.startswith(".") and "/" not in folder and "\\" not in folder
    assert (Path("/out") / folder).parent == Path("/out")


def test_an_artifact_edited_to_run_code_is_refused_at_load(tiny_bert: Path, tmp_path: Path) -> None:
    """The units' own loaders read the artifact's config.json; an artifact edited to map classes to code is
    refused before any of them runs (load_artifact), even when called without the reuse check."""
    from siliconlab.convert import Converter
    from siliconlab.convert.pipeline import load_artifact
    from siliconlab.errors import UsageError
    from siliconlab.models import resolve
    from siliconlab.units import get_unit

    unit = get_unit("torch-cpu-fp32")
    outcome = Converter(resolve(str(tiny_bert)), tmp_path, threads=1).convert_unit(unit)
    assert outcome.status == "converted", outcome.error
    config = json.loads((outcome.artifact_dir / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel"}
    (outcome.artifact_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="asks to run its own Python code"):
        load_artifact(outcome.artifact_dir, unit, threads=1)
