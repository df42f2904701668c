"""casreg: a content-addressed registry for ML models and training checkpoints."""

__version__ = "0.1.0"

__all__ = ["Registry", "Repository", "CasregError", "__version__"]


def __getattr__(name):  # lazy, so `import casreg` (and the CLI's --help) stays fast
    if name == "Registry":
        from .registry import Registry
        return Registry
    if name == "Repository":
        from .repo import Repository
        return Repository
    if name == "CasregError":
        from .errors import CasregError
        return CasregError
    raise AttributeError(name)
