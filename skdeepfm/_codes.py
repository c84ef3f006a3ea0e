"""The codes every field reserves, shared by the encoder and the network (no dependencies)."""

#: Code of a category never seen during ``fit`` (in a field without
#: infrequent categories). Its embedding rows start at zero.
UNKNOWN_INDEX = 0
#: Code of a missing value (None, NaN, pd.NA, NaT).
MISSING_INDEX = 1
#: Code shared by the categories that ``min_frequency`` / ``max_categories``
#: set aside, and by unseen ones in a field that has such categories.
INFREQUENT_INDEX = 2
#: Number of reserved codes at the start of each field.
N_RESERVED = 3
