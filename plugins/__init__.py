"""The plugins CouchPotato ships (``vetting``), each registered under the entry-point group
``couchpotato.plugins`` and using only ``katopotato.plugin``. See docs/architecture.md."""
