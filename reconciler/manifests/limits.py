"""What one revision of the manifest repository may hold: the loader's bounds.

The repository is a trust boundary (more people can push than can log in, and the daemon
acts as root), so what a push holds is bounded before it is believed. docs/manifest-limits.md
says why each bound is what it is.
"""

# What one revision of the repository may hold. A real fleet's repository is far inside
# them: the benchmark fleet (22,000 documents, bench/gen_manifests.py) is 6 MB in files of
# at most 31 KB. Each bound is there so that a hostile push costs a bounded amount of
# memory and time: parsing one 1 MiB file of the worst shape (a flow list of one-letter
# items) peaks at about 190 MB and a few seconds on a small VM.
MAX_FILE_BYTES = 1 << 20  # 1 MiB per file
MAX_REPOSITORY_BYTES = 64 << 20  # 64 MiB of manifest files in all
MAX_DOCUMENTS_PER_FILE = 10_000
MAX_DOCUMENTS = 50_000  # per revision, over every file
MAX_DEPTH = 32  # nested mappings and lists in one document; a manifest needs five
