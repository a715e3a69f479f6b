#!/usr/bin/env python3
"""How much machine code a server runs per answered query, from a callgrind
output file written with --dump-instr=yes.

Prints two numbers, tab-separated: the distinct 64-byte lines of code
holding an instruction that ran at least once in every MIN_SHARE queries
(the hot path: what each query, or each receive batch at low rates, brings
into the instruction cache), and the distinct lines that ran at all.

Why lines, not instructions: between two receive batches the kernel's UDP
path runs on the same core and evicts much of the first-level instruction
cache, so each batch fetches the code it runs again, a line at a time. Two
servers running the same number of instructions can fetch very different
amounts of code."""

import argparse
import re
import sys

LINE = 64


def executed(path):
    """Returns {instruction address: times executed} from a callgrind file
    with instruction-level positions, or None when its positions are not
    instructions. Costs of calls (the line after `calls=`) are inclusive
    costs of the callee and are skipped."""
    counts = {}
    addr = 0
    skip_next = False
    # Without a "positions:" line, positions are source lines alone.
    position_columns = None
    event_column = None
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.startswith("positions:"):
                positions = line.split()[1:]
                if positions[:1] != ["instr"]:
                    return None
                position_columns = len(positions)
                continue
            if line.startswith("events:"):
                if position_columns is None:
                    return None
                events = line.split()[1:]
                event_column = position_columns + events.index("Ir")
                continue
            if line.startswith("calls="):
                skip_next = True
                continue
            if not line or not (line[0].isdigit() or line[0] in "+-*"):
                continue
            tokens = line.split()
            first = tokens[0]
            if first.startswith("0x"):
                addr = int(first, 16)
            elif first[0] == "+":
                addr += int(first[1:], 16 if first[1:].startswith("0x") else 10)
            elif first[0] == "-":
                addr -= int(first[1:], 16 if first[1:].startswith("0x") else 10)
            elif first != "*":
                addr = int(first)
            if skip_next:
                skip_next = False
                continue
            if event_column is None or len(tokens) <= event_column:
                continue
            counts[addr] = counts.get(addr, 0) + int(tokens[event_column])
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("callgrind_out")
    parser.add_argument("answered", type=int, help="queries answered while counting")
    parser.add_argument("--min-share", type=float, default=5.0,
                        help="hot: ran at least once in this many queries (default 5)")
    args = parser.parse_args()
    if args.answered <= 0:
        print("0\t0")
        return
    counts = executed(args.callgrind_out)
    if counts is None:
        sys.exit(f"{args.callgrind_out}: no instruction-level costs (run callgrind with --dump-instr=yes)")
    hot = {a // LINE for a, n in counts.items() if n * args.min_share >= args.answered}
    every = {a // LINE for a in counts}
    print(f"{len(hot)}\t{len(every)}")


if __name__ == "__main__":
    main()
