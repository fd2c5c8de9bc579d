"""The portal's pages, one module per area; each has `routes(pages) -> list[BaseRoute]`."""
