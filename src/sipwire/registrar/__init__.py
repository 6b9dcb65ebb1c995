"""The registrar of RFC 3261 §10, sans-I/O: REGISTER in, binding changes and responses out.

``model.py`` holds the data a registrar keeps (bindings, users); the stores
in ``sipwire.store`` persist it and the server in ``sipwire.server`` drives it.
"""
