#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Turns RESULT lines into medians, netdisk-vs-peer ratios, a Markdown table and PNG charts (ratios, storms)."""

import datetime
import os
import platform
import statistics
import subprocess
import sys
from collections import defaultdict



def ours(subject):
    """netdisk, netdiskd, netdisk.pxe, netdisk.efi-ovmf, ...: everything of ours."""
    return subject.startswith("netdisk")


def parse(path):
    """{(section, metric): {subject: [values]}}, units, which way is better, failed sections."""
    values = defaultdict(lambda: defaultdict(list))
    units, better, failed = {}, {}, []
    with open(path) as f:
        for line in f:
            words = line.split()
            if words[:1] == ["FAILED"]:
                failed.append(words[1])
            if len(words) != 7 or words[0] != "RESULT":
                continue
            _, section, metric, subject, value, unit, way = words
            try:
                number = float(value)
            except ValueError:
                continue
            values[(section, metric)][subject].append(number)
            units[(section, metric)] = unit
            better[(section, metric)] = way
    return values, units, better, failed


def ratios(values, better):
    """Each of ours against each peer, oriented so that > 1 means netdisk wins."""
    rows = []
    for key, subjects in values.items():
        for mine_name in sorted(s for s in subjects if ours(s)):
            mine = statistics.median(subjects[mine_name])
            for peer, vals in sorted(subjects.items()):
                if ours(peer) or not mine:
                    continue
                theirs = statistics.median(vals)
                win = mine / theirs if better[key] == "higher" else theirs / mine
                rows.append((key, mine_name, peer, mine, theirs, win))
    return rows


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].strip() if out else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return [
        f"date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"machine: {platform.node()}, {os.cpu_count()} cores, {cpu}",
        f"kernel: {platform.release()}",
        f"qemu: {version(['qemu-system-x86_64', '--version'])}",
        f"nbdkit: {version(['nbdkit', '--version'])}",
        f"fio: {version(['fio', '--version'])}",
    ]


def write_markdown(path, values, units, better, rows, failed):
    lines = ["# netdisk benchmark results", ""]
    lines += [f"- {m}" for m in machine()]
    lines += ["", "## Medians", "", "| section | metric | subject | median | unit | runs |",
              "|---|---|---|---:|---|---:|"]
    for (section, metric), subjects in sorted(values.items()):
        for subject, vals in sorted(subjects.items()):
            lines.append(f"| {section} | {metric} | {subject} | {statistics.median(vals):.2f} "
                         f"| {units[(section, metric)]} | {len(vals)} |")
    lines += ["", "## netdisk against its peers", "",
              "Ratio > 1 means netdisk is better (faster, or less time).", "",
              "| section | metric | netdisk | peer | netdisk median | peer median | ratio |",
              "|---|---|---|---|---:|---:|---:|"]
    for (section, metric), ours, peer, mine, theirs, win in rows:
        lines.append(f"| {section} | {metric} | {ours} | {peer} | {mine:.2f} | {theirs:.2f} "
                     f"| {win:.2f} |")
    if failed:
        lines += ["", "Sections that failed: " + ", ".join(failed)]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_chart(path, rows):
    if not rows:
        return
    data = path + ".dat"
    with open(data, "w") as f:
        for (section, metric), ours, peer, _, _, win in rows:
            f.write(f'"{section} {metric}\\nvs {peer}" {win:.3f}\n')
    script = f"""
set terminal png size 1000,{200 + 40 * len(rows)}
set output '{path}'
set title 'netdisk against its peers (ratio > 1: netdisk better; log scale)'
set style fill solid 0.6
set boxwidth 0.6
set logscale y
set yrange [0.1:*]
set xtics rotate by -30 font ',8'
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2
set bmargin 10
plot '{data}' using 0:2:xtic(1) with boxes notitle
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.unlink(data)


def storm_series(values, prefix):
    """{"storm mc-on": [(clients, median)]} for metrics PREFIX-* of the storm sections."""
    series = {}
    for (section, metric), subjects in values.items():
        if section not in ("storm", "vmstorm") or not metric.startswith(prefix):
            continue
        points = []
        for subject, vals in subjects.items():
            count = subject.rsplit("-", 1)[-1]
            if count.isdigit():
                points.append((int(count), statistics.median(vals)))
        name = ("real VMs " if section == "vmstorm" else "simulated ") + metric[len(prefix):]
        series[name] = sorted(points)
    return series


def write_storm_chart(path, values):
    """Server egress (x one client) and time to all done against the number of clients,
    simulated storms and real VMs, one line per multicast setting."""
    panels = [("egress-ratio-mc-", "server egress, x one client alone", "x one client"),
              ("all-done-s-mc-", "simulated: all clients done", "s"),
              ("all-roots-s-mc-", "real VMs: all at their root shell", "s")]
    panels = [(storm_series(values, prefix), title, unit) for prefix, title, unit in panels]
    panels = [p for p in panels if p[0]]
    if not panels:
        return
    files, plots = [], []
    for series, title, unit in panels:
        lines = []
        for name, points in sorted(series.items()):
            data = f"{path}.{len(files)}.dat"
            with open(data, "w") as f:
                f.writelines(f"{x} {y:.3f}\n" for x, y in points)
            files.append(data)
            lines.append(f"'{data}' using 1:2 with linespoints title '{name}'")
        plots.append(f"set title '{title}'\nset ylabel '{unit}'\nplot " + ", ".join(lines))
    script = f"""
set terminal png size {520 * len(plots)},480
set output '{path}'
set multiplot layout 1,{len(plots)}
set logscale x 2
set logscale y
set xlabel 'clients'
set key top left font ',8'
set grid
""" + "\n".join(plots) + "\nunset multiplot\n"
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    finally:
        for data in files:
            os.unlink(data)


def main():
    raw, out = sys.argv[1], sys.argv[2]
    values, units, better, failed = parse(raw)
    rows = ratios(values, better)
    write_markdown(os.path.join(out, "latest.md"), values, units, better, rows, failed)
    write_chart(os.path.join(out, "ratios.png"), rows)
    write_storm_chart(os.path.join(out, "storm.png"), values)
    for (section, metric), ours, peer, mine, theirs, win in rows:
        print(f"{section:6} {metric:22} {ours} vs {peer}: {win:.2f}x")
    return 1 if not values else 0


if __name__ == "__main__":
    sys.exit(main())
