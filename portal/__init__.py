"""Portal: the CKAN-compatible Action API, web pages, downloads, DCAT and map widgets."""
