"""Table formats behind one small interface.

Only Delta Lake exists today (`delta.py`). What the rest of drsync needs from a format is:
list the log (`list_log`), the files a commit adds (`files_added`), the files a version
needs (`snapshot`), and path safety (`safe_relpath`). An Iceberg or Hive-directory adapter
would provide the same functions.
"""
