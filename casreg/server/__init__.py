"""``casreg serve``: the store over HTTP (FastAPI + uvicorn; ``pip install 'casreg[serve]'``).

app.py       create_app, the Store and its lock, who may write (token, read-only), body limit
kubeflow.py  Kubeflow Model Registry's REST API (v1 and v1alpha3) over the catalog
fate.py      FATE-Serving's model transfer (POST /v1/model/transfer)
files.py     a version's files (the artifacts' download URLs), streamed, with Range
rest.py      casreg's own REST API (/api/casreg/v1): models, versions, diff, stats, metadata, names
catalog_page.py  the web catalog at / (static/: HTML, JS, CSS shipped in the package)
errors.py    casreg's error types as HTTP statuses, JSON bodies, the catch-all
"""

from .app import check_bind, create_app, read_token

__all__ = ["check_bind", "create_app", "read_token"]
