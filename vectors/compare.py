"""Compare generator outputs with the committed vectors.

    python3 vectors/compare.py vectors.json NAME=OUTPUT.json [NAME=OUTPUT.json ...]

Every generator prints {"runtime", "signatures", "attributes", "tokens"};
entries are matched by "id" and every field a runtime computed must equal
the committed value. Prints one line per runtime; exits 1 on any
disagreement, with the differing values side by side.
"""

import json
import sys

# Fields every runtime must compute, per section. Node and Python also emit
# "canonical" (they compute RFC 8785 themselves); Node echoes the inputs too.
REQUIRED = {
    "signatures": ("hex", "base64", "base64url"),
    "attributes": ("hex", "base64", "base64url"),
    "tokens": ("token",),
}
IGNORED_TOP_LEVEL = {"runtime"}


def show(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def describe(where: str, expected, got) -> str:
    lines = [f"  {where}", f"    expected: {show(expected)}", f"    got:      {show(got)}"]
    if isinstance(expected, str) and isinstance(got, str):
        i = first_difference(expected, got)
        lines.append(f"    first difference at character {i}")
    return "\n".join(lines)


def compare(expected: dict, got: dict) -> list:
    problems = []
    for key in sorted(set(got) - set(REQUIRED) - IGNORED_TOP_LEVEL):
        if got[key] != expected.get(key):
            problems.append(describe(key, expected.get(key), got[key]))
    for section, required in REQUIRED.items():
        want = {e["id"]: e for e in expected.get(section, [])}
        have = {}
        for entry in got.get(section) or []:
            have[entry.get("id")] = entry
        for missing in sorted(set(want) - set(have)):
            problems.append(f"  {section}/{missing}: missing from this runtime's output")
        for extra in sorted(set(have) - set(want)):
            problems.append(f"  {section}/{extra}: not in vectors.json (regenerate with check.sh --write)")
        for ident in sorted(set(want) & set(have)):
            entry = have[ident]
            for field in required:
                if field not in entry:
                    problems.append(f"  {section}/{ident}.{field}: not computed")
            for field, value in entry.items():
                if field != "id" and value != want[ident].get(field):
                    problems.append(describe(f"{section}/{ident}.{field}", want[ident].get(field), value))
    return problems


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        expected = json.load(f)
    agreed, failed = [], []
    for arg in sys.argv[2:]:
        name, _, path = arg.partition("=")
        try:
            with open(path, encoding="utf-8") as f:
                got = json.load(f)
        except (OSError, ValueError) as e:
            failed.append(name)
            print(f"✗ {name}: unreadable output ({e})")
            continue
        label = got.get("runtime", name)
        problems = compare(expected, got)
        if problems:
            failed.append(name)
            print(f"✗ {label}: {len(problems)} disagreement(s) with {sys.argv[1]}")
            for p in problems[:40]:
                print(p)
            if len(problems) > 40:
                print(f"  … and {len(problems) - 40} more")
        else:
            agreed.append(label)
            print(f"✓ {label}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
