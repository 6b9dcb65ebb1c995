"""Location service and user storage for the registrar and proxy (see ``base.py``).

``open_store(url)`` returns an unopened :class:`LocationStore` for a URL: a
path or ``sqlite:///path/to/file.db`` (the default, embedded), ``redis://``
or ``postgresql://`` (several nodes sharing state).
"""

from sipwire.store.base import Binding, BindingChange, LocationStore, StoreUnavailable, User

__all__ = ["Binding", "BindingChange", "LocationStore", "StoreUnavailable", "User"]
