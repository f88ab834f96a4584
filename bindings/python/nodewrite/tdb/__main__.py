"""python -m nodewrite.tdb ARGS: TDB's activation server with the drop-in (nodewrite.tdb.serve)."""

import nodewrite.tdb

nodewrite.tdb.serve()
