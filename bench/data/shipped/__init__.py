"""Data shipped inside the package: MovieLens ml-latest-small (GroupLens; its README with the
licence beside it), used when no other copy is found and nothing can be downloaded."""
