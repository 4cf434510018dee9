"""OGC API - Processes: the function APIs of the city platform, as pygeoapi processes.

``coordinate-conversion`` (``convert``), ``district-lookup`` (``district``), ``spatial-query``
(``spatial``), ``address-lookup`` (``address``) and ``address-reverse`` (``reverse``),
``extract`` (``extract``); ``registry.process_resources`` adds them to the running pygeoapi
config from the catalog snapshot; ``common`` holds what they share.
"""
