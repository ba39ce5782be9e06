"""Convert an nnabla-nas config to our search-space JSON: convert.py IN.json OUT.json"""
import json
import sys

from profiler.space.nnabla_nas import convert
from profiler.space.searchspace import parse_document

src, dst = sys.argv[1], sys.argv[2]
doc = convert(json.load(open(src)), src)
parse_document(doc, dst)
with open(dst, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
