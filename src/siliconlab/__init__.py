"""siliconlab: run a transformer on the fastest compute unit of the machine it is on."""

from siliconlab.version import __version__

__all__ = ["__version__", "load"]


def load(name: str = "minilm", unit: str = "best", **options):  # noqa: ANN201 - returns a tasks.Pipeline
    """A ready pipeline for a model name: `encode`, `classify` or `reply`, on `unit` ("best" by default).

    Imported lazily so `import siliconlab` stays light; see docs/api.md.
    """
    from siliconlab.tasks import load as load_pipeline

    return load_pipeline(name, unit, **options)
