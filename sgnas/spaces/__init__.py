"""Search spaces beyond the built-in ones of :mod:`sgnas.space`.

Each module here registers its spaces with :data:`sgnas.space.SPACES` when imported
(``SPACES.register("name", factory)``); :func:`sgnas.get_space` imports every module of this package
the first time it is asked for a name it does not know, so adding a space is adding a module.
"""
