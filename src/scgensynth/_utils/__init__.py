"""Internal helpers shared by several layers (not public API; any layer may import them).

- :mod:`._deprecation`: renamed arguments, accepted under their old name with a warning;
- :mod:`._docs`: docstring fragments written once and filled in with :func:`doc_params`;
- :mod:`._files`: output paths checked before any work, and atomic writes;
- :mod:`._keys`: writing results into a user's AnnData without losing what was there;
- :mod:`._logging`: verbosity levels and ``quiet_training()`` around a Lightning run.
"""
