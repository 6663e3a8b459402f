"""KatoPotato: the orchestrator and HTTP API of CouchPotato.

Sessions, jobs and their scheduler (``scheduler``, ``worker``, ``broker/``), the plugin host
(``plugin`` is all a plugin may import; ``plugin_host`` loads them), the built-in plugins
(``core_plugin``, ``transcription``), the capture job's runtime (``capture/``), the API
(``api/``), search, auth, metrics and the ``katopotato`` CLI. docs/architecture.md maps its modules.
"""
