"""Luigi's task ids for tasks described on stdin; run with Luigi's venv (bench/luigi_venv.py).

Input: a JSON list of ``[family, [[name, parameter class, significant, default text or
null], ...], {name: text}]``. Each family becomes a Luigi task class with Luigi's parameter
classes of those names (charon's share them); each instance is built from the
command-line texts (defaults included), parsed by Luigi. Output: the JSON list of their ``task_id``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import luigi  # type: ignore[import-not-found]  # installed in bench/.venv-luigi only


def main() -> None:
    classes: dict[str, Any] = {}
    ids = []
    for family, declared, texts in json.load(sys.stdin):
        if family not in classes:
            attributes = {name: getattr(luigi, kind)(significant=significant)
                          for name, kind, significant, _ in declared}
            classes[family] = type(family, (luigi.Task,), attributes)
        task_class = classes[family]
        params = dict(task_class.get_params())
        given = {name: default for name, _, _, default in declared if default is not None}
        ids.append(task_class(**{name: params[name].parse(text)
                                 for name, text in {**given, **texts}.items()}).task_id)
    json.dump(ids, sys.stdout)


if __name__ == "__main__":
    main()
