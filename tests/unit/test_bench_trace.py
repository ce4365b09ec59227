"""``bench.trace`` lines up the steps of each order from the trace files of several processes."""

from __future__ import annotations

from pathlib import Path

from bench.trace import complete, hop_table, read_steps


def write(directory: Path, process: str, *lines: tuple[int, str, str]) -> None:
    text = "".join(f"{t} {process} {step} {key}\n" for t, step, key in lines)
    (directory / f"{process}.trace").write_text(text + "not a line\n")


def test_orders_of_two_runs_with_the_same_ids_are_told_apart_and_incomplete_ones_left_out(tmp_path: Path) -> None:
    # Two runs number their orders from 1 again; order 2 of the second run never came back.
    write(tmp_path, "trader", (100, "send", "1"), (400, "recv", "1"), (1000, "send", "1"), (1500, "recv", "1"),
          (1100, "send", "2"))
    write(tmp_path, "gw", (150, "fix_in", "1"), (300, "fix_out", "1"), (1200, "fix_in", "1"), (1300, "fix_out", "1"),
          (1150, "fix_in", "2"))
    orders = complete(read_steps(tmp_path))
    assert sorted(orders) == ["1", "1#2"]
    assert [name for _, name in orders["1#2"]] == ["trader send", "gw fix_in", "gw fix_out", "trader recv"]
    hops = hop_table(orders)
    assert [hop for hop, *_ in hops] == ["trader send -> gw fix_in", "gw fix_in -> gw fix_out",
                                         "gw fix_out -> trader recv"]
    assert [count for *_, count in hops] == [2, 2, 2]
