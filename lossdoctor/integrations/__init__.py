"""Training-loop callbacks: thin adapters from a framework's hooks to :class:`lossdoctor.Monitor`.

Each module imports its framework when it is imported itself (``import lossdoctor``
never does): ``lossdoctor.integrations.transformers``, ``.lightning``, ``.keras``.
"""
