"""What training and search share to evaluate networks: datasets and loaders (:mod:`.data`,
:mod:`.decoded`), BN recalibration and inherited accuracy (:mod:`.evaluate`), supernet checkpoints
(:mod:`.checkpoint`), seeds and process-group information (:mod:`.seeds`, :mod:`.distributed`)."""
