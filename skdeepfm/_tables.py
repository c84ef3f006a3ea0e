"""Reading and writing the command line's tables: CSV or Parquet, whole or in chunks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SUFFIXES = (".csv", ".gz", ".txt", ".tsv", ".parquet")


class TableError(ValueError):
    """A table that cannot be read as asked: the message names the file and what was expected."""


def _checked(path, option):
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{option} {str(path)!r}: no such file")
    if path.suffix not in SUFFIXES:
        raise TableError(f"{option} must be a .csv or .parquet file; got {path.name!r}")
    return path


def _read_error(path, exc):
    return TableError(
        f"{path.name} cannot be read as a {'Parquet' if _parquet(path) else 'CSV'} table: {exc}"
    )


def _parquet(path):
    return path.suffix == ".parquet"


def _csv_options(path):
    return {"sep": None, "engine": "python"} if path.suffix == ".tsv" else {"low_memory": False}


def read_table(path, option):
    """The whole table at ``path`` (CSV or Parquet) as a DataFrame."""
    path = _checked(path, option)
    try:
        return pd.read_parquet(path) if _parquet(path) else pd.read_csv(path, **_csv_options(path))
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise _read_error(path, exc) from exc


def check_columns(columns, wanted, path, option):
    """Raise TableError naming the first of ``wanted`` that is not in ``columns``."""
    columns = list(columns)
    for name in wanted:
        if name not in columns:
            raise TableError(
                f"{option} {name!r} is not a column of {Path(path).name}; its columns are {columns}"
            )


def _header(path):
    if _parquet(path):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).schema_arrow.names
    return list(pd.read_csv(path, nrows=0, **_csv_options(path)).columns)


def iter_table(path, option, chunk_size, fields, keep, string_columns=()):
    """The columns ``fields`` and ``keep`` of the table at ``path``, ``chunk_size`` rows at a time.

    Memory is bounded by the chunk, not the file. ``string_columns`` are read
    as text (a CSV chunk of digits would otherwise be read as numbers).
    Raises TableError before the first chunk when a column is missing.
    """
    path = _checked(path, option)
    try:
        header = _header(path)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise _read_error(path, exc) from exc
    missing = [name for name in fields if name not in header]
    if missing:
        raise TableError(
            f"{option} {path.name} has no column {missing[0]!r}, which the model was trained on "
            f"(it needs {fields})"
        )
    check_columns(header, keep, path, "--keep")
    wanted = list(dict.fromkeys([*fields, *keep]))
    return _chunks(path, chunk_size, wanted, [c for c in string_columns if c in wanted])


def _chunks(path, chunk_size, wanted, string_columns):
    try:
        if _parquet(path):
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size, columns=wanted):
                yield batch.to_pandas()
            return
        options = {**_csv_options(path), "usecols": wanted, "chunksize": chunk_size}
        options.pop("low_memory", None)
        with pd.read_csv(path, dtype=dict.fromkeys(string_columns, str), **options) as reader:
            yield from reader
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise _read_error(path, exc) from exc


def write_chunks(chunks, path, option):
    """Write DataFrames one after the other to ``path`` (CSV or Parquet) as one table."""
    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise TableError(f"{option} must end in .csv or .parquet; got {path.name!r}")
    if not path.parent.is_dir():
        raise TableError(f"{option} {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    writer = None
    try:
        for index, chunk in enumerate(chunks):
            if _parquet(path):
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema)
                writer.write_table(table.cast(writer.schema))
            else:
                chunk.to_csv(path, mode="w" if index == 0 else "a", header=index == 0, index=False)
    finally:
        if writer is not None:
            writer.close()
