"""The CKAN-compatible open-data portal: datasets, the Action API, search, DCAT and publishing."""
