"""Result storages: the protocol (``base``) and one module per built-in storage."""
