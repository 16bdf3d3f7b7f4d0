"""pocketgan's kernel: what every stage may import, and nothing else (standard library only).

- :mod:`~pocketgan.core.errors`: the error types (one line at the CLI, never a traceback);
- :mod:`~pocketgan.core.contract`: the model-directory manifest and artifact sidecar types;
- :mod:`~pocketgan.core.fsio`: atomic writes, JSON, SHA-256;
- :mod:`~pocketgan.core.registry`: the one :class:`~pocketgan.core.registry.Registry` type;
- :mod:`~pocketgan.core.keys`: cache fingerprints salted with the code's version;
- :mod:`~pocketgan.core.progress`: progress callbacks for long-running work;
- :mod:`~pocketgan.core.optional`: optional dependencies with an "install pocketgan[extra]" error;
- :mod:`~pocketgan.core.hostinfo`: this CPU's instruction set (which int8 kernels it runs);
- :mod:`~pocketgan.core.cli`: running a CLI so that user errors become one line.
"""
