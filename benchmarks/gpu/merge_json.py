"""Merge every JSON file in a folder into one ``{file stem: contents}`` JSON (the device returns 8 files)."""

import json
import pathlib
import sys

folder, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
merged = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
target.write_text(json.dumps(merged, indent=1))
print(f"merged {len(merged)} files into {target}")
