"""`catembed validate` and labelled `catembed evaluate` over real files and standard input."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import stat
import threading
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from safetensors.numpy import load_file, save_file

from catembed.cli import GATE_EXIT_CODE, _Terminated, main
from catembed.tables import read_table
from catembed.validation import VALIDATOR_FILE, Validator

VALUES = ["Sweaters", "<b>Sweaters</b>", "Car Battery", "Jeans", "Swaeters", "Sweaters"]
VERDICTS = ["valid", "malformed", "out_of_domain", "valid", "malformed", "valid"]
REPORT = ["verdict", "score", "nearest", "suggestion"]
TABLE = pa.table({"id": list(range(len(VALUES))), "category": VALUES})


def run(*args: str, stdin: str | bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def write(path: Path, table: pa.Table) -> Path:
    fmt = path.suffix
    if fmt == ".parquet":
        pq.write_table(table, path)
    elif fmt in (".csv", ".tsv"):
        options = pacsv.WriteOptions(delimiter="\t" if fmt == ".tsv" else ",")
        pacsv.write_csv(table, path, options)
    elif fmt == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in table.to_pylist()), "utf-8")
    else:
        path.write_text("".join(f"{v}\n" for v in table.column("category").to_pylist()), "utf-8")
    return path


def test_a_rare_misspelling_of_a_frequent_unlisted_value_gets_its_repair(
    model_dir: Path, tmp_path: Path
) -> None:
    column = ["Wool Socks"] * 60 + ["Wool Sacks"] * 3 + ["Sweaters"] * 5
    source = write(tmp_path / "in.csv", pa.table({"category": column}))
    output = tmp_path / "out.csv"
    code, _, err = run("validate", "--model", str(model_dir), str(source), "--output", str(output))
    assert code == 0, err
    rows = read_table(output).to_pylist()
    assert {(r["verdict"], r["suggestion"]) for r in rows if r["category"] == "Wool Sacks"} == {
        ("malformed", "Wool Socks")
    }
    assert {r["verdict"] for r in rows if r["category"] == "Wool Socks"} == {"valid"}


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl"])
def test_every_table_format_keeps_each_row_and_adds_the_report(
    model_dir: Path, tmp_path: Path, suffix: str
) -> None:
    source = write(tmp_path / f"in{suffix}", TABLE)
    before = source.read_bytes()
    output = tmp_path / f"out{suffix}"
    code, out, err = run(
        "validate", "--model", str(model_dir), str(source), "--column", "category",
        "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    assert source.read_bytes() == before  # the input is never modified
    result = read_table(output)
    assert result.column_names == ["id", "category", *REPORT]
    ids = list(range(len(VALUES)))
    assert result.column("id").to_pylist() == ([str(i) for i in ids] if "sv" in suffix else ids)
    assert result.column("verdict").to_pylist() == VERDICTS
    # CSV and TSV read empty cells back as nulls.
    assert [s or "" for s in result.column("suggestion").to_pylist()[:2]] == ["", "Sweaters"]
    assert f"{len(VALUES)} rows with verdicts written to {output}" in err
    assert "anomaly rate: 50.00%" in out
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_plain_tsv_or_csv_output_starts_each_line_with_the_input_line(
    model_dir: Path, tmp_path: Path
) -> None:
    lines = ["id\tcategory", "0\tSweaters", "1\tCar Battery", "2\t<b>Sweaters</b>"]
    source = tmp_path / "in.tsv"
    source.write_text("\n".join(lines) + "\n", "utf-8")
    output = tmp_path / "out.tsv"
    code, _, err = run(
        "validate", "--model", str(model_dir), str(source), "--column", "category",
        "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    written = output.read_text("utf-8").splitlines()
    assert written[0] == "\t".join(["id", "category", *REPORT])
    assert all(w.startswith(line + "\t") for w, line in zip(written, lines, strict=True))
    assert '"' not in output.read_text("utf-8")  # nothing here needs quotes
    # A cell that holds the delimiter is quoted, and reads back as it was.
    source = tmp_path / "in.csv"
    source.write_text('category\n"Hooks, Buckles"\nSweaters\n', "utf-8")
    output = tmp_path / "out.csv"
    code, _, err = run("validate", "--model", str(model_dir), str(source), "--output", str(output))
    assert code == 0, err
    assert read_table(output).column("category").to_pylist() == ["Hooks, Buckles", "Sweaters"]


def test_a_text_file_gets_a_value_column(model_dir: Path, tmp_path: Path) -> None:
    source = write(tmp_path / "in.txt", pa.table({"category": VALUES}))
    output = tmp_path / "out.csv"
    code, _, err = run("validate", "--model", str(model_dir), str(source), "--output", str(output))
    assert code == 0, err
    result = read_table(output)
    assert result.column_names == ["value", *REPORT]
    assert result.column("verdict").to_pylist() == VERDICTS


def test_standard_input_and_the_readable_summary(model_dir: Path) -> None:
    code, out, err = run("validate", "--model", str(model_dir), "-", stdin="\n".join(VALUES) + "\n")
    assert code == 0, err
    assert "Judging" not in err  # no progress bar when standard error is no terminal
    assert "column 'value': 6 rows, 5 distinct values" in out
    summary = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert summary["valid"][:2] == ["3", "50.00%"]
    assert summary["malformed"][:2] == ["2", "33.33%"]
    assert summary["out_of_domain"][:2] == ["1", "16.67%"]
    # The worst values, most suspicious first, with their repairs.
    worst = out.split("suggestion  nearest")[1]
    assert "<b>Sweaters</b>" in worst and "Car Battery" in worst
    # Values and nearest references may contain spaces: read the score after the verdict.
    pattern = re.compile(r"\b(?:valid|malformed|out_of_domain|missing)\s+(\d\.\d{3})\b")
    rows = worst.strip().splitlines()[1:]
    scores = [float(match.group(1)) for row in rows if (match := pattern.search(row))]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    code, out, _ = run(
        "validate", "--model", str(model_dir), "-", "--no-progress", stdin="Sweaters\n"
    )
    assert code == 0 and "column 'value': 1 row, 1 distinct value\n" in out


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_a_table_on_standard_input_goes_to_standard_output(
    model_dir: Path, tmp_path: Path, fmt: str
) -> None:
    source = write(tmp_path / f"in.{fmt}", TABLE)
    args = ["validate", "--model", str(model_dir), "-", "--format", fmt, "--column", "category"]
    result = CliRunner().invoke(main, [*args, "--output", "-"], input=source.read_bytes())
    assert result.exit_code == 0, result.stderr
    # The table alone on standard output, in the input's format; the summary on stderr.
    output = tmp_path / f"out.{fmt}"
    output.write_bytes(result.stdout_bytes)
    rows = read_table(output).to_pylist()
    assert [(r["category"], r["verdict"]) for r in rows] == list(zip(VALUES, VERDICTS, strict=True))
    assert "anomaly rate: 50.00%" in result.stderr
    assert "6 rows with verdicts written to standard output" in result.stderr
    if fmt == "jsonl":  # each line as it came, the report at its end
        lines = source.read_text("utf-8").splitlines()
        written = output.read_text("utf-8").splitlines()
        assert all(o.startswith(i[:-1] + ", ") for o, i in zip(written, lines, strict=True))
    code, _, err = run(*args[:-1], "nope", stdin=source.read_bytes())
    assert code == 1 and err.startswith("Error: standard input has no column 'nope'")


@pytest.mark.parametrize(
    ("source_name", "output_name"),
    [("IN.CSV.GZ", "out.parquet"), ("in.jsonl.bz2", "out.jsonl.gz"), ("in.txt.zst", "OUT.CSV.LZ4")],
)
def test_compressed_files_are_read_and_written(
    model_dir: Path, tmp_path: Path, source_name: str, output_name: str
) -> None:
    plain = write(tmp_path / source_name.rsplit(".", 1)[0].lower(), pa.table({"category": VALUES}))
    source = tmp_path / source_name
    codec = {"gz": "gzip", "bz2": "bz2", "zst": "zstd", "lz4": "lz4"}
    with pa.CompressedOutputStream(str(source), codec[source.suffix[1:].lower()]) as stream:
        stream.write(plain.read_bytes())
    output = tmp_path / output_name
    code, _, err = run("validate", "--model", str(model_dir), str(source), "--output", str(output))
    assert code == 0, err
    if output.suffix in (".gz", ".LZ4"):  # written compressed, read back the same way
        assert output.read_bytes()[:1] not in (b"{", b'"')
    assert read_table(output).column("verdict").to_pylist() == VERDICTS


def test_outputs_keep_the_usual_mode_follow_links_and_never_replace_a_pipe(
    model_dir: Path, tmp_path: Path
) -> None:
    source = write(tmp_path / "in.csv", pa.table({"category": VALUES}))
    validate = ["validate", "--model", str(model_dir), str(source), "--output"]
    umask = os.umask(0o022)
    try:
        output = tmp_path / "out.csv"
        assert run(*validate, str(output))[0] == 0
        assert stat.S_IMODE(output.stat().st_mode) == 0o644  # not mkstemp's 0600
        output.chmod(0o640)
        link = tmp_path / "link.csv"
        link.symlink_to(output)
        output.write_text("old\n", "utf-8")
        assert run(*validate, str(link))[0] == 0
        assert link.is_symlink() and stat.S_IMODE(output.stat().st_mode) == 0o640
        assert read_table(output).column("verdict").to_pylist() == VERDICTS
        pipe = tmp_path / "pipe.csv"
        os.mkfifo(pipe)
        code, _, err = run(*validate, str(pipe))
        assert code == 1 and "is not a regular file; write to a file, or to - for stdout" in err
        assert stat.S_ISFIFO(pipe.stat().st_mode)
    finally:
        os.umask(umask)


def test_format_names_what_the_suffix_does_not(model_dir: Path, tmp_path: Path) -> None:
    source = write(tmp_path / "export.jsonl", pa.table({"category": VALUES}))
    source = source.rename(tmp_path / "export.data")
    code, out, err = run("validate", "--model", str(model_dir), str(source), "--format", "jsonl")
    assert code == 0, err
    assert "column 'category': 6 rows" in out
    code, _, err = run("validate", "--model", str(model_dir), str(source), "--format", "parquet")
    assert code == 1 and "cannot read" in err and "as parquet" in err


def test_the_anomaly_rate_gates_a_pipeline(model_dir: Path) -> None:
    stdin = "\n".join(VALUES) + "\n"
    code, _, err = run(
        "validate", "--model", str(model_dir), "-", "--max-anomaly-rate", "0.4", stdin=stdin
    )
    assert code == GATE_EXIT_CODE == 3
    assert "anomaly rate 50.00% exceeds --max-anomaly-rate 40.00%" in err
    code, _, _ = run(
        "validate", "--model", str(model_dir), "-", "--max-anomaly-rate", "0.5", stdin=stdin
    )
    assert code == 0
    code, out, _ = run(
        "validate", "--model", str(model_dir), "-", "--max-anomaly-rate", "0.5",
        "--count-missing", stdin=stdin + "\n\n",
    )  # fmt: skip
    assert code == GATE_EXIT_CODE
    assert "anomaly rate: 62.50% (out_of_domain + malformed + missing)" in out


def test_numbers_nan_and_nulls_in_parquet_get_verdicts(model_dir: Path, tmp_path: Path) -> None:
    source = write(
        tmp_path / "numbers.parquet", pa.table({"size": [1.5, float("nan"), None, 42.0]})
    )
    output = tmp_path / "out.jsonl"
    code, _, err = run("validate", "--model", str(model_dir), str(source), "--output", str(output))
    assert code == 0, err
    rows = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    assert [r["verdict"] for r in rows] == ["malformed", "missing", "missing", "malformed"]


def test_very_long_strings_are_judged(model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "long.txt"
    source.write_text("Sweaters\n" + "x" * 100_000 + "\n", encoding="utf-8")
    code, out, err = run("validate", "--model", str(model_dir), str(source))
    assert code == 0, err
    assert "malformed      1" in out
    assert "xxxxxxxx…" in out  # shown cut short


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["missing.csv"], "file not found: "),
        (
            "table",
            ["in.csv", "--column", "nope"],
            "has no column 'nope'; its columns are: id, category",
        ),
        ("table", ["in.csv"], "has several columns (id, category); choose one with --column"),
        # A name with a comma read as two: 'several columns (city, state, id)'.
        ("comma", ["comma.csv"], "has several columns ('city, state', id); choose one"),
        ("empty", ["empty.txt"], "has no rows to validate"),
        ("latin1", ["latin1.txt"], "is not valid UTF-8"),
        ("latin1csv", ["latin1.csv"], "is not valid UTF-8 text"),
        (
            "table",
            ["in.csv", "--column", "category", "--output", "in.csv"],
            "must not be the input",
        ),
        ("duplicate", ["dup.csv", "--column", "category"], "more than one column named 'category'"),
        ("utf16", ["utf16.csv"], "is not valid UTF-8"),
        (
            "lists",
            ["lists.parquet", "--column", "category", "--output", "out.csv"],
            "write .parquet",
        ),
        ("table", ["in.csv", "--column", "category", "--output", "/proc/out.csv"], "cannot write"),
        ("badjson", ["bad.jsonl"], "bad.jsonl line 2 is not valid JSON: Expecting"),
        ("array", ["array.jsonl"], "array.jsonl line 1 is not a JSON object"),
        ("emptyjson", ["empty.jsonl"], "empty.jsonl has no rows"),
        # Its byte was counted from the start of an 8 kB block: 'byte 440' of a 25 kB file.
        ("latin1json", ["latin1.jsonl"], "latin1.jsonl line 1001 is not valid UTF-8"),
        ("deepjson", ["deep.jsonl"], "deep.jsonl line 1 is nested too deeply"),
        ("xz", ["in.csv.xz"], ".xz compression is not supported; use .gz, .bz2, .zst or .lz4"),
        (
            "verdictcolumn",
            ["verdict.csv", "--column", "verdict", "--output", "out.csv"],
            "the column to validate is named 'verdict', as a column validate adds",
        ),
        ("table", ["in.csv", "--column", "category", "--output", "nope/o.csv"], "does not exist"),
        (
            "semicolons",
            ["semi.csv", "--column", "category"],
            "read as CSV, its header is one column, 'category;id' "
            "(another delimiter? CSV files are read with commas)",
        ),
        (
            "tabs",
            ["tabs.csv", "--column", "category"],
            "read as CSV, its header is one column, 'category\\tid' "
            "(tab-separated? pass --format tsv)",
        ),
    ],
)
def test_bad_input_gives_a_one_line_error(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    setup: str | None, args: list[str], message: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    if setup == "table":
        write(tmp_path / "in.csv", pa.table({"id": [1], "category": ["Sweaters"]}))
    elif setup == "comma":
        write(tmp_path / "comma.csv", pa.table({"city, state": ["Moab, UT"], "id": [1]}))
    elif setup == "empty":
        (tmp_path / "empty.txt").write_bytes(b"")
    elif setup == "latin1":
        (tmp_path / "latin1.txt").write_bytes("Caf\xe9\n".encode("latin-1"))
    elif setup == "latin1csv":
        (tmp_path / "latin1.csv").write_bytes("category\nCaf\xe9\n".encode("latin-1"))
    elif setup == "duplicate":
        (tmp_path / "dup.csv").write_text("category,category\nSweaters,Jeans\n", "utf-8")
    elif setup == "utf16":
        (tmp_path / "utf16.csv").write_bytes("category\nSweaters\n".encode("utf-16"))
    elif setup == "badjson":
        (tmp_path / "bad.jsonl").write_text('{"category": "Sweaters"}\n{"category": }\n', "utf-8")
    elif setup == "array":
        (tmp_path / "array.jsonl").write_text('["Sweaters"]\n', "utf-8")
    elif setup == "deepjson":
        (tmp_path / "deep.jsonl").write_text('{"category": ' + "[" * 5000 + "]" * 5000 + "}\n")
    elif setup == "xz":
        (tmp_path / "in.csv.xz").write_bytes(b"\xfd7zXZ\x00")
    elif setup == "verdictcolumn":
        (tmp_path / "verdict.csv").write_text("verdict\nSweaters\n", "utf-8")
    elif setup == "latin1json":
        rows = '{"category": "Sweaters"}\n' * 1000 + '{"category": "Caf\xe9"}\n'
        (tmp_path / "latin1.jsonl").write_bytes(rows.encode("latin-1"))
    elif setup == "emptyjson":
        (tmp_path / "empty.jsonl").write_text("\n", "utf-8")
    elif setup == "semicolons":
        (tmp_path / "semi.csv").write_text("category;id\nSweaters;1\n", "utf-8")
    elif setup == "tabs":
        (tmp_path / "tabs.csv").write_text("category\tid\nSweaters\t1\n", "utf-8")
    elif setup == "lists":
        table = pa.table({"category": ["Sweaters"], "tags": [["wool", "winter"]]})
        pq.write_table(table, tmp_path / "lists.parquet")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, _, err = run("validate", "--model", str(model_dir), *args)
    assert code == 1
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_an_output_of_no_table_format_is_a_usage_error(model_dir: Path, tmp_path: Path) -> None:
    # As encode's: exit 2, naming the option; it was exit 1 with an input error.
    (tmp_path / "in.txt").write_text("Sweaters\n", encoding="utf-8")
    code, _, err = run(
        "validate", "--model", str(model_dir), str(tmp_path / "in.txt"),
        "--output", str(tmp_path / "out.xlsx"),
    )  # fmt: skip
    assert code == 2 and "Invalid value for '--output': must end in .csv, .tsv" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out.xlsx").exists()


def test_a_comma_separated_tsv_read_whole_is_named_in_a_warning(
    model_dir: Path, tmp_path: Path
) -> None:
    # Read as TSV, 'id,category' is one column and '1,Sweaters' its value: every verdict
    # was wrong without a word. Every row holding the header's commas is named; a column of
    # 'City, State' values is as regular, so it is a warning, and --format silences it.
    (tmp_path / "prod.tsv").write_text("id,category\n1,Sweaters\n2,Toaster\n", "utf-8")
    (tmp_path / "valid.tsv").write_text("id,name\n1,Sweaters\n2,Jeans\n3,Socks\n", "utf-8")
    (tmp_path / "mixed.tsv").write_text("id,category\n1,Sweaters\nJeans\n", "utf-8")
    code, _, err = run("validate", "--model", str(model_dir), str(tmp_path / "prod.tsv"))
    warning = (
        "prod.tsv: read as TSV, its header is one column, 'id,category' (comma-separated? "
        "pass --format csv); every row holds its comma too"
    )
    assert code == 0 and warning in err
    valid, data = str(tmp_path / "valid.tsv"), str(tmp_path / "prod.tsv")
    code, _, err = run("validate", "--valid", valid, data, "--format", "tsv")
    assert code == 0 and "valid.tsv: read as TSV" in err and "name it .csv" in err
    assert "prod.tsv" not in err  # --format said so
    code, _, err = run("validate", "--model", str(model_dir), str(tmp_path / "mixed.tsv"))
    assert code == 0 and "read as TSV" not in err


def test_csv_cells_are_judged_and_written_as_the_text_they_hold(tmp_path: Path) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text("00123\n00124\ntrue\nfalse\n", "utf-8")
    source = tmp_path / "in.csv"
    # Leading zeros, a boolean's spelling, 'N/A' and a blank line stay as written.
    source.write_text("code\n00123\ntrue\nN/A\n\n00124\n", "utf-8")
    output = tmp_path / "out.csv"
    code, _, err = run("validate", "--valid", str(valid), str(source), "--output", str(output))
    assert code == 0, err
    rows = read_table(output).to_pylist()
    assert [r["code"] for r in rows] == ["00123", "true", "N/A", None, "00124"]
    assert [r["verdict"] for r in rows] == ["valid", "valid", "malformed", "missing", "valid"]
    assert "00123" in output.read_text("utf-8")
    # Old Mac line ends, and a header name holding a line break, read the same way.
    source.write_bytes(b'"product\nline",code\rSweaters,00123\rJeans,true\r')
    code, _, err = run(
        "validate", "--valid", str(valid), str(source), "--column", "code", "--output", str(output)
    )
    assert code == 0, err
    rows = read_table(output).to_pylist()
    assert [(r["code"], r["verdict"]) for r in rows] == [("00123", "valid"), ("true", "valid")]
    code, _, err = run("validate", "--valid", str(valid), str(source))  # which column?
    assert code == 1 and "columns ('product\\nline', code)" in err
    assert len(err.strip().splitlines()) == 1


def test_jsonl_rows_are_written_back_as_they_were_with_the_report_added(tmp_path: Path) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text("2024-01-01T10:00:00\n12345678901234567890123\nSweaters\n", "utf-8")
    lines = [
        '{"code": "2024-01-01T10:00:00", "price": 2.50}',  # a date-like text stays text
        '{"code": 12345678901234567890123, "tags":  ["a"]}',  # beyond 64 bits: not rounded
        "",  # a blank line is no row
        '  {"code":"<b>Sweaters</b>"  }',
        '{"price": 1e400}',  # no code: missing, and no code key added
        '{"code": "verdict", "x": "\\ud800"}',  # a field's name as a value; a lone surrogate
        '{"code": "Sweaters", "verdict": "old", "price": 2.50, "a": 1, "a": 2}',
    ]
    source = tmp_path / "in.jsonl"  # with a byte order mark and Windows line ends
    source.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    output = tmp_path / "out.jsonl"
    args = ["validate", "--valid", str(valid), str(source), "--column", "code"]
    code, _, err = run(*args, "--output", str(output))
    assert code == 0, err
    data = output.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.endswith(b"}\r\n")
    every = data[3:].decode("utf-8").split("\r\n")[:-1]
    assert len(every) == len(lines) and every[2] == ""  # the blank line too, as written
    written = [line for line in every if line]
    rows = [json.loads(line) for line in written]
    assert [r["verdict"] for r in rows[:4]] == ["valid", "valid", "malformed", "missing"]
    kept = [line for line in lines if line]
    assert all(w.startswith(k[:-1]) for w, k in zip(written[:5], kept, strict=False))
    # The input's own verdict is replaced; its other fields stay as written.
    assert written[5].startswith(
        '{"code": "Sweaters", "price": 2.50, "a": 1, "a": 2, "verdict": "valid", "score": '
    )
    # Other formats get the cells as text; a number among texts as its JSON.
    output = tmp_path / "out.parquet"
    code, _, err = run(*args, "--output", str(output))
    assert code == 0, err
    assert read_table(output).column("code").to_pylist() == [
        "2024-01-01T10:00:00", "12345678901234567890123", "<b>Sweaters</b>", None, "verdict",
        "Sweaters",
    ]  # fmt: skip


def test_options_out_of_range_are_usage_errors(model_dir: Path) -> None:
    for option in (["--top", "-1"], ["--max-anomaly-rate", "nan"]):
        code, _, err = run("validate", "--model", str(model_dir), *option, "-", stdin="Jeans\n")
        assert code == 2 and f"Invalid value for '{option[0]}'" in err


@pytest.mark.parametrize("name", ["long.csv", "long.csv.gz"])  # gzip: a thousandth the size
def test_a_value_of_megabytes_is_malformed_at_once(
    model_dir: Path, tmp_path: Path, name: str
) -> None:
    source = tmp_path / name
    text = ("category\nSweaters\n" + "y" * 3_000_000 + "\n").encode()
    with pa.output_stream(str(source), compression="gzip" if name.endswith(".gz") else None) as f:
        f.write(text)
    output = tmp_path / "out.parquet"
    code, _, err = run("validate", "--model", str(model_dir), str(source), "--output", str(output))
    assert code == 0, err
    rows = read_table(output).to_pylist()
    assert [r["verdict"] for r in rows] == ["valid", "malformed"]
    assert len(rows[1]["category"]) == 3_000_000


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("not_object", "is not a JSON object"),
        ("truncated", "cannot read the validator in"),
        ("nan_bias", "not a finite number"),
        ("infinite_length", "bad format profile"),
        ("wrong_shapes", "expected a list of strings"),
        ("null_reference", "reference must be a list of strings"),
        ("flat_embeddings", "not a matrix"),
    ],
)
def test_a_damaged_validator_is_a_one_line_error(
    model_dir: Path, tmp_path: Path, damage: str, message: str
) -> None:
    folder = tmp_path / "damaged"
    shutil.copytree(model_dir, folder)
    settings = folder / VALIDATOR_FILE
    data = json.loads(settings.read_text("utf-8"))
    if damage == "not_object":
        data = [1, 2, 3]
    elif damage == "truncated":
        tensors = folder / "validator.safetensors"
        tensors.write_bytes(tensors.read_bytes()[:5000])
    elif damage == "nan_bias":
        data["domain"]["bias"] = float("nan")
    elif damage == "infinite_length":
        data["profile"]["max_length"] = float("inf")
    elif damage == "null_reference":
        data["reference"][0] = None
    elif damage == "flat_embeddings":
        tensors = load_file(str(folder / "validator.safetensors"))
        tensors["reference_embeddings"] = tensors["reference_embeddings"].ravel()
        save_file(tensors, str(folder / "validator.safetensors"))
    else:
        data["profile"]["first_shapes"] = [1, 2]
    settings.write_text(json.dumps(data), "utf-8")
    code, _, err = run("validate", "--model", str(folder), "-", stdin="Sweaters\n")
    assert code == 1
    assert err.startswith("Error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_a_model_without_validator_data_is_a_one_line_error(
    model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "plain"
    shutil.copytree(model_dir, folder)
    (folder / VALIDATOR_FILE).unlink()
    code, _, err = run("validate", "--model", str(folder), "-", stdin="Sweaters\n")
    assert code == 1
    assert err.strip() == (
        f"Error: {folder} has no validator data (validator.json, validator.safetensors); "
        "train it with `catembed train`, or build one from valid values "
        "(`catembed validate --valid`, Validator.from_values)"
    )


def test_a_list_of_valid_values_stands_in_for_a_trained_model(tmp_path: Path) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nHoodies\nJeans\nTank Tops\nPolo Shirts\nCardigans\n", "utf-8")
    source = write(tmp_path / "in.csv", pa.table({"category": VALUES}))
    output = tmp_path / "out.parquet"
    code, out, err = run("validate", "--valid", str(valid), str(source), "--output", str(output))
    assert code == 0, err
    rows = read_table(output).to_pylist()
    assert [r["verdict"] for r in rows] == VERDICTS
    assert rows[1]["suggestion"] == rows[4]["suggestion"] == "Sweaters"
    assert "anomaly rate: 50.00%" in out


def test_validate_needs_a_model_or_valid_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CATEMBED_MODEL", raising=False)
    code, _, err = run("validate", "-", stdin="Sweaters\n")
    assert code == 2 and "give --model (a trained model folder) or --valid" in err
    code, _, err = run("validate", "--valid", "-", "-", stdin="Sweaters\n")
    assert code == 2 and "cannot both be standard input" in err
    one = tmp_path / "one.txt"
    one.write_text("Sweaters\n", "utf-8")
    code, _, err = run("validate", "--valid", str(one), "-", stdin="Sweaters\n")
    assert code == 1
    assert err.strip() == "Error: need at least 2 distinct valid values to build a validator"


def test_the_gate_shows_a_rate_and_the_limit_it_exceeds_as_different_numbers(
    model_dir: Path,
) -> None:
    # 1 row of 3 over 0.3333 said 'anomaly rate 33.33% exceeds --max-anomaly-rate 33.33%',
    # and over -0, 'exceeds -0.00%'. A rate equal to the limit passes, as the README says.
    stdin = "Sweaters\nJeans\nCar Battery\n"
    args = ["validate", "--model", str(model_dir), "-", "--max-anomaly-rate"]
    told = {
        "0.3333": "33.333% exceeds --max-anomaly-rate 33.330%",
        "0.333333333": "33.33333333% exceeds --max-anomaly-rate 33.33333330%",
        "-0": "33.33% exceeds --max-anomaly-rate 0.00%",
    }
    for limit, shown in told.items():
        code, out, err = run(*args, limit, stdin=stdin)
        assert "anomaly rate: 33.33% (out_of_domain + malformed)" in out
        assert (code, err.splitlines()[-1]) == (GATE_EXIT_CODE, f"anomaly rate {shown}"), limit
    code, _, err = run(*args, str(1 / 3), stdin=stdin)
    assert code == 0 and "exceeds" not in err


def test_evaluate_labelled_values(model_dir: Path, tmp_path: Path) -> None:
    labelled = tmp_path / "labelled.csv"
    labels = ["valid", "malformed", "out_of_domain", "valid", "malformed", "valid"]
    write(labelled, pa.table({"value": VALUES, "label": labels}))
    code, out, err = run("evaluate", "--model", str(model_dir), "--data", str(labelled))
    assert code == 0, err
    scores = out.split("true \\ verdict")[0]
    lines = {line.split()[0]: line.split()[1:] for line in scores.splitlines() if line.strip()}
    assert lines["anomaly"] == ["1.0000", "1.0000", "1.0000", "3"]
    assert lines["valid"] == ["1.0000", "1.0000", "1.0000", "3"]
    assert "true \\ verdict  valid  out_of_domain  malformed  missing" in out
    assert "AUROC of the score (anomaly vs valid): 1.0000" in out
    # Only valid labels: what no value has, or none was given, is n/a, not 0 or nan.
    write(labelled, pa.table({"value": ["Sweaters", "Car Battery"], "label": ["valid"] * 2}))
    code, out, err = run("evaluate", "--model", str(model_dir), "--data", str(labelled))
    assert code == 0, err
    scores = out.split("true \\ verdict")[0]
    lines = {line.split()[0]: line.split()[1:] for line in scores.splitlines() if line.strip()}
    assert lines["valid"] == ["1.0000", "0.5000", "0.6667", "2"]
    assert lines["out_of_domain"] == ["0.0000", "n/a", "n/a", "0"]
    assert lines["malformed"] == ["n/a", "n/a", "n/a", "0"]
    assert "AUROC of the score (anomaly vs valid): n/a (needs valid and anomalous values)" in out
    write(labelled, pa.table({"value": ["Sweaters", None], "label": ["valid"] * 2}))
    code, out, err = run("evaluate", "--model", str(model_dir), "--data", str(labelled))
    assert code == 0 and "labelled.csv: 1 row has no value, judged missing" in err
    bad = tmp_path / "bad.csv"
    write(bad, pa.table({"value": ["Sweaters", "Toaster"], "label": ["Valid", "OOD"]}))
    code, _, err = run("evaluate", "--model", str(model_dir), "--data", str(bad))
    assert code == 1 and "bad.csv: unknown labels ['OOD']" in err  # as written, not 'ood'
    # Labels are checked before the model loads: a folder that is no model is not the error.
    code, _, err = run("evaluate", "--model", str(tmp_path), "--data", str(bad))
    assert code == 1 and "bad.csv: unknown labels ['OOD']" in err


def test_evaluate_says_the_label_column_cannot_be_the_values_column(
    model_dir: Path, tmp_path: Path
) -> None:
    labelled = write(tmp_path / "l.csv", pa.table({"value": ["Jeans"], "label": ["valid"]}))
    args = ["evaluate", "--model", str(model_dir), "--data", str(labelled), "--column", "label"]
    code, _, err = run(*args)  # was: "has no column 'label'; its columns are: value, label"
    assert code == 1
    assert err.strip() == "Error: " + str(labelled) + (
        ": --column names the values' column, not the labels'"
    )


def test_evaluate_names_a_label_column_written_in_another_case(
    model_dir: Path, tmp_path: Path
) -> None:
    # Read as triplets, it was 'triplet data needs columns anchor, positive, negative'.
    for header in ("Label", " label"):
        labelled = tmp_path / "l.csv"
        labelled.write_text(f"value,{header}\nJeans,valid\n", "utf-8")
        code, _, err = run("evaluate", "--model", str(model_dir), "--data", str(labelled))
        assert code == 1
        assert err.strip() == (
            f"Error: {labelled} has no column 'label' (did you mean {header!r}?): "
            "labelled values need a column named label"
        )


def test_validate_has_help_text() -> None:
    code, out, _ = run("validate", "--help")
    assert code == 0
    assert "Give every value of a column a verdict" in out
    assert "--max-anomaly-rate" in out


def test_a_text_file_with_old_mac_line_ends_has_one_value_per_line(tmp_path: Path) -> None:
    source = tmp_path / "values.txt"
    source.write_bytes(b"Sweaters\rJeans\rHoodies\r")
    assert read_table(source).column("value").to_pylist() == ["Sweaters", "Jeans", "Hoodies"]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_prefix_lets_several_columns_be_validated_in_turn(
    model_dir: Path, tmp_path: Path, suffix: str
) -> None:
    table = TABLE.append_column(
        "second", pa.array(["Jeans", "Toaster", None, "JEANS", "Jeans", "Jeans"])
    )
    first, both = tmp_path / f"first{suffix}", tmp_path / f"both{suffix}"
    for source, column, output in [
        (write(tmp_path / f"in{suffix}", table), "category", first),
        (first, "second", both),
    ]:
        code, _, err = run(
            "validate", "--model", str(model_dir), str(source), "--column", column,
            "--prefix", f"{column}_", "--output", str(output),
        )  # fmt: skip
        assert code == 0, err
    result = read_table(both)
    assert result.column_names == [
        "id", "category", "second",
        *(f"category_{name}" for name in REPORT), *(f"second_{name}" for name in REPORT),
    ]  # fmt: skip
    assert result.column("category_verdict").to_pylist() == VERDICTS
    assert result.column("second_verdict").to_pylist() == [
        "valid", "out_of_domain", "missing", "malformed", "valid", "valid",
    ]  # fmt: skip
    # A prefix JSON writes escaped: a second run still replaces the first run's fields.
    if suffix == ".jsonl":
        twice = tmp_path / "twice.jsonl"
        for output in (first, twice):
            code, _, err = run(
                "validate", "--model", str(model_dir), str(both if output == first else first),
                "--column", "category", "--prefix", 'a"b_', "--output", str(output),
            )  # fmt: skip
            assert code == 0, err
        keys = [json.loads(line, object_pairs_hook=list) for line in twice.read_text().splitlines()]
        assert all(sum(k == 'a"b_verdict' for k, _ in pairs) == 1 for pairs in keys)
    # A column named like one the prefix gives is refused, as 'verdict' is without one.
    code, _, err = run(
        "validate", "--model", str(model_dir), str(both), "--column", "second_verdict",
        "--prefix", "second_", "--output", str(tmp_path / "third.csv"),
    )  # fmt: skip
    assert code == 1 and "is named 'second_verdict', as a column validate adds" in err
    # Without --output no column is added, so none can clash; a prefix would name nothing.
    named = write(tmp_path / f"named{suffix}", pa.table({"verdict": VALUES}))
    code, out, err = run(
        "validate", "--model", str(model_dir), str(named), "--column", "verdict", "--reasons"
    )
    assert code == 0 and "column 'verdict': 6 rows" in out, err
    assert re.search(r"^Car Battery .* in-domain probability", out, re.MULTILINE)
    # Nor is any input column replaced or dropped, so no warning says one is.
    earlier = write(
        tmp_path / f"earlier{suffix}",
        pa.table({"category": VALUES, "verdict": ["valid"] * 6, "reason": [""] * 6}),
    )
    code, out, err = run(
        "validate", "--model", str(model_dir), str(earlier), "--column", "category"
    )
    assert code == 0 and "column 'category': 6 rows" in out, err
    assert "replacing" not in err and "dropping" not in err
    code, _, err = run("validate", "--model", str(model_dir), str(named), "--prefix", "x_")
    assert code == 2 and "--prefix names the columns written to --output; give --output" in err


def test_values_valid_only_for_their_rows_are_named_and_can_be_judged_alone(
    model_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "batch.txt"  # a fifth of the rows mapped to an appliance
    source.write_text("Jeans\nSweaters\nHoodies\nToaster\nTrousers\n" * 20, "utf-8")
    code, out, err = run("validate", "--model", str(model_dir), str(source))
    assert code == 0, err
    assert re.search(r"^valid\s+100\s", out, re.MULTILINE)
    assert (
        "1 distinct value (20 rows: 'Toaster') is valid only for filling as many rows as the "
        "listed values; --no-column-evidence judges each value alone"
    ) in out
    code, out, _ = run(
        "validate", "--model", str(model_dir), str(source), "--no-column-evidence",
        "--max-anomaly-rate", "0.1",
    )  # fmt: skip
    assert code == GATE_EXIT_CODE
    assert re.search(r"^out_of_domain\s+20\s", out, re.MULTILINE) and "valid only" not in out


def test_a_valid_values_table_is_read_from_the_column_of_the_same_name(tmp_path: Path) -> None:
    valid = write(tmp_path / "valid.csv", pa.table({"code": ["00123", "00124"], "n": ["1", "2"]}))
    source = write(tmp_path / "in.csv", pa.table({"id": ["1", "2"], "code": ["00123", "0O124"]}))
    code, out, err = run("validate", "--valid", str(valid), str(source), "--column", "code")
    assert code == 0, err
    assert re.search(r"^valid\s+1\s", out, re.MULTILINE)
    code, _, err = run("validate", "--valid", str(valid), str(source), "--column", "id")
    assert (
        code == 1
        and "valid.csv has several columns (code, n); choose one with --valid-column" in err
    )
    # The input's column found without --column, or 'value', name the list's column too.
    alone = write(tmp_path / "alone.csv", pa.table({"code": ["00123", "0O124"]}))
    code, out, err = run("validate", "--valid", str(valid), str(alone))
    assert code == 0 and re.search(r"^valid\s+1\s", out, re.MULTILINE), err
    listed = write(
        tmp_path / "listed.csv", pa.table({"id": ["1", "2"], "value": ["00123", "00124"]})
    )
    code, out, err = run("validate", "--valid", str(listed), str(alone))
    assert code == 0 and re.search(r"^valid\s+1\s", out, re.MULTILINE), err


def test_a_table_on_standard_input_read_as_text_gets_a_hint(model_dir: Path) -> None:
    code, _, err = run(
        "validate", "--model", str(model_dir), "-", "--column", "category",
        stdin="id,category\n1,Jeans\n",
    )  # fmt: skip
    assert code == 1
    assert err.strip().endswith(
        "its columns are: value; standard input is read as text: name its format with --format"
    )


def test_a_table_piped_as_a_file_without_suffix_gets_the_same_hint(
    model_dir: Path, tmp_path: Path
) -> None:
    # <(zcat products.csv.gz) is a path without a suffix: it was told its only column is
    # 'value', and not why.
    piped = tmp_path / "63"
    piped.write_text("id,category\n1,Jeans\n", "utf-8")
    code, _, err = run("validate", "--model", str(model_dir), str(piped), "--column", "category")
    assert code == 1
    assert err.strip().endswith(f"{piped} is read as text: name its format with --format")
    code, _, err = run(
        "validate", "--model", str(model_dir), str(piped), "--column", "category",
        "--format", "csv",
    )  # fmt: skip
    assert code == 0, err


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_reasons_adds_why_each_value_got_its_verdict(
    model_dir: Path, tmp_path: Path, suffix: str
) -> None:
    source, output = write(tmp_path / f"in{suffix}", TABLE), tmp_path / f"out{suffix}"
    code, _, err = run(
        "validate", "--model", str(model_dir), str(source), "--column", "category",
        "--reasons", "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    rows = read_table(output).to_pylist()
    assert list(rows[0])[-5:] == [*REPORT, "reason"]
    why = {r["category"]: r["reason"] for r in rows}
    assert why["Sweaters"] in ("", None)  # a listed value needs no reason
    assert why["Car Battery"].startswith("in-domain probability ")
    assert why["<b>Sweaters</b>"] and why["Swaeters"]
    # Validated again without --reasons: the earlier reasons go with the earlier verdicts.
    again = tmp_path / f"again{suffix}"
    code, _, err = run(
        "validate", "--model", str(model_dir), str(output), "--column", "category",
        "--output", str(again),
    )  # fmt: skip
    assert code == 0 and "dropping the input's 'reason' column" in err
    assert list(read_table(again).to_pylist()[0])[-4:] == REPORT
    assert "reason" not in read_table(again).column_names


def test_evaluate_labelled_values_with_a_validator_built_from_a_list(tmp_path: Path) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nJeans\nCardigan\nTrousers\n", "utf-8")
    labelled = write(
        tmp_path / "labelled.csv",
        pa.table({"value": VALUES, "label": VERDICTS}),
    )
    code, out, err = run("evaluate", "--valid", str(valid), "--data", str(labelled))
    assert code == 0, err
    scores = out.split("true \\ verdict")[0]
    lines = {line.split()[0]: line.split()[1:] for line in scores.splitlines() if line.strip()}
    assert lines["anomaly"] == ["1.0000", "1.0000", "1.0000", "3"]
    code, _, err = run("evaluate", "--data", str(labelled))
    assert code == 2 and "give --model (a trained model folder) or --valid" in err
    triplets = write(
        tmp_path / "t.csv", pa.table({"anchor": ["a"], "positive": ["b"], "negative": ["c"]})
    )
    code, _, err = run("evaluate", "--valid", str(valid), "--data", str(triplets))
    assert (
        code == 2
        and "t.csv holds no label column, so triplets: they are scored with --model alone, not --valid"
        in err
    )


def test_a_jsonl_input_that_changes_while_validated_is_an_error(
    model_dir: Path, tmp_path: Path
) -> None:
    from catembed.columns import read_input, validate_table, write_output
    from catembed.errors import InputError
    from catembed.validation import Validator

    source = tmp_path / "in.jsonl"
    source.write_text('{"category": "Sweaters"}\n\n{"category": "Jeans"}\n', "utf-8")
    table, column = read_input(str(source), "category")
    report = validate_table(Validator.load(model_dir), table, column)
    with source.open("a", encoding="utf-8") as handle:
        handle.write('{"category": "Toaster"}\n')  # a row more than was judged
    output = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match="changed while it was being validated"):
        write_output(report, output, str(source))
    assert not output.exists()  # nothing half-written


def test_an_output_folder_that_takes_no_files_is_refused_before_the_model_loads(
    tmp_path: Path,
) -> None:
    # Only a missing folder was; a read-only one failed once every value had been judged.
    source = write(tmp_path / "in.csv", pa.table({"category": VALUES}))
    no_model = tmp_path / "no-model"  # looked for only after the output is checked
    code, _, err = run("validate", "--model", str(no_model), str(source), "--output", "/proc/o.csv")
    assert code == 1 and "cannot write to /proc" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", [pa.binary(), pa.binary(2), pa.binary_view()])
def test_bytes_a_csv_output_cannot_hold_are_refused_before_the_model_loads(
    tmp_path: Path, kind: pa.DataType
) -> None:
    # Only the first row was tried: bytes that are not UTF-8 in a later one failed the write
    # once every value had been judged, in a message that named no column (bytes of a fixed
    # length or viewed did so still).
    source = tmp_path / "in.parquet"
    raw = pa.array([b"ok", b"\xff\xfe" if kind == pa.binary(2) else b"Sweat\xffers"], kind)
    pq.write_table(pa.table({"category": ["Sweaters", "Jeans"], "raw": raw}), source)
    no_model = tmp_path / "no-model"  # looked for only after the output is checked
    output = tmp_path / "out.csv"
    args = ["--model", str(no_model), str(source), "--column", "category"]
    code, _, err = run("validate", *args, "--output", str(output))
    assert code == 1 and "column 'raw' holds bytes that are not UTF-8 text" in err
    assert len(err.strip().splitlines()) == 1 and not output.exists()
    code, _, err = run("validate", *args, "--output", str(tmp_path / "out.parquet"))
    assert "model folder not found" in err  # Parquet holds bytes as they are


def test_output_never_replaces_the_file_of_valid_values(tmp_path: Path) -> None:
    valid = tmp_path / "valid.csv"
    valid.write_text("category\nSweaters\nJeans\nCardigan\n", "utf-8")
    link = tmp_path / "link.csv"
    link.symlink_to(valid)
    source = write(tmp_path / "in.csv", pa.table({"category": VALUES}))
    for output in (valid, link):
        code, _, err = run("validate", "--valid", str(valid), str(source), "--output", str(output))
        assert code == 1 and "--output must not be the --valid file" in err
        assert len(err.strip().splitlines()) == 1
    assert valid.read_text("utf-8") == "category\nSweaters\nJeans\nCardigan\n"


def test_output_never_replaces_the_file_of_negatives_nor_the_file_encoded(tmp_path: Path) -> None:
    # Both were overwritten with the verdicts (the embeddings): inputs too, never outputs.
    negatives = tmp_path / "negatives.csv"
    negatives.write_text("value\nCar Battery\nToaster\nDog Food\n", "utf-8")
    source = write(tmp_path / "in.csv", pa.table({"category": VALUES}))
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nJeans\nCardigan\n", "utf-8")
    args = ["--valid", str(valid), "--out-of-domain", str(negatives), str(source)]
    code, _, err = run("validate", *args, "--output", str(negatives))
    assert code == 1 and "--output must not be the --out-of-domain file" in err
    assert len(err.strip().splitlines()) == 1
    assert negatives.read_text("utf-8") == "value\nCar Battery\nToaster\nDog Food\n"
    encoded = tmp_path / "in.jsonl"
    encoded.write_text('{"value": "Sweaters"}\n', "utf-8")
    no_model = tmp_path / "no-model"  # refused before any model is looked for
    code, _, err = run(
        "encode", "--model", str(no_model), "--input", str(encoded), "--output", str(encoded)
    )
    assert code == 1 and "--output must not be the --input file" in err
    assert encoded.read_text("utf-8") == '{"value": "Sweaters"}\n'


def test_an_output_link_that_leads_back_to_itself_is_a_one_line_error(
    model_dir: Path, tmp_path: Path
) -> None:
    source = write(tmp_path / "in.csv", pa.table({"category": VALUES}))
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    code, _, err = run("validate", "--model", str(model_dir), str(source), "--output", str(loop))
    assert code == 1 and "loop.csv is a link that leads back to itself" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_parquet_file_with_a_column_name_twice_is_a_one_line_error(
    model_dir: Path, tmp_path: Path
) -> None:
    table = pa.Table.from_arrays(
        [pa.array(["Sweaters"]), pa.array(["a"]), pa.array(["b"])], ["category", "tag", "tag"]
    )
    pq.write_table(table, tmp_path / "dup.parquet")
    code, _, err = run(
        "validate", "--model", str(model_dir), str(tmp_path / "dup.parquet"), "--column", "category"
    )
    assert code == 1 and "dup.parquet has more than one column named 'tag'" in err
    assert len(err.strip().splitlines()) == 1


def test_a_column_of_bytes_is_judged_as_its_text(model_dir: Path, tmp_path: Path) -> None:
    # Older Parquet writers store text as bytes: judged as text, with or without --column;
    # bytes that are not UTF-8 are malformed, as Validator.validate has them.
    values = [v.encode() for v in VALUES]
    source = tmp_path / "bytes.parquet"
    pq.write_table(pa.table({"category": pa.array(values, pa.binary())}), source)
    for column in ([], ["--column", "category"]):
        code, out, err = run("validate", "--model", str(model_dir), str(source), *column)
        assert code == 0, err
        assert "Car Battery" in out and "b'" not in out
        assert "anomaly rate: 50.00%" in out
    broken = tmp_path / "broken.parquet"
    pq.write_table(pa.table({"category": pa.array([b"Sweaters", b"Sweat\xffers"])}), broken)
    output = tmp_path / "out.parquet"
    code, _, err = run("validate", "--model", str(model_dir), str(broken), "--output", str(output))
    assert code == 0, err
    assert read_table(output).column("verdict").to_pylist() == ["valid", "malformed"]


def test_a_parquet_output_keeps_the_validated_column_s_type(
    model_dir: Path, tmp_path: Path
) -> None:
    # The column was read dictionary-encoded, for speed, and written so: a string column came
    # back as pandas' category, a large_string one as a dictionary of plain strings, and a
    # string_view one was a traceback once judged (arrow casts no dictionary to string_view).
    source = tmp_path / "in.parquet"
    fields = [pa.field("category", pa.string(), nullable=False, metadata={"unit": "none"})]
    fields += [pa.field("large", pa.large_string()), pa.field("view", pa.string_view())]
    fields += [pa.field("id", pa.int64())]
    columns = [VALUES, VALUES, VALUES, range(6)]
    table = pa.table(columns, schema=pa.schema(fields))
    pq.write_table(table, source)
    for column in ("category", "large", "view"):
        output = tmp_path / f"out-{column}.parquet.gz"
        code, _, err = run(
            "validate", "--model", str(model_dir), str(source), "--column", column,
            "--output", str(output),
        )  # fmt: skip
        assert code == 0, err
        result = read_table(output)
        assert result.select(table.column_names) == table
        assert result.schema.field("category").metadata == {b"unit": b"none"}
        assert result.column("verdict").to_pylist() == VERDICTS


def test_durations_are_written_to_text_outputs_as_they_are_judged(
    model_dir: Path, tmp_path: Path
) -> None:
    # CSV and TSV got a bare count of the unit (86403000000123), JSONL pandas' spelling.
    waits = pa.array([86403_000_000_123, None, 5 * 10**9, 86403_000_000_123], pa.duration("ns"))
    source = write(tmp_path / "in.parquet", pa.table({"category": VALUES[:4], "wait": waits}))
    spelt = ["1 day, 0:00:03.000000123", None, "0:00:05", "1 day, 0:00:03.000000123"]
    for suffix in (".csv", ".tsv", ".jsonl"):
        output = tmp_path / f"out{suffix}"
        code, _, err = run(
            "validate", "--model", str(model_dir), str(source), "--column", "category",
            "--output", str(output),
        )  # fmt: skip
        assert code == 0, err
        assert read_table(output).column("wait").to_pylist() == spelt, suffix
    code, _, err = run(
        "validate", "--model", str(model_dir), str(source), "--column", "wait",
        "--output", str(tmp_path / "waits.csv"),
    )  # fmt: skip
    assert code == 0, err
    assert read_table(tmp_path / "waits.csv").column("wait").to_pylist() == spelt
    parquet = tmp_path / "out.parquet"
    code, _, err = run(
        "validate", "--model", str(model_dir), str(source), "--column", "category",
        "--output", str(parquet),
    )  # fmt: skip
    assert code == 0, err
    assert read_table(parquet).column("wait") == pa.chunked_array([waits])  # typed, as read


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


def test_a_jsonl_output_holds_no_nan_or_infinity(model_dir: Path, tmp_path: Path) -> None:
    prices = [1.5, float("nan"), float("inf"), None, -float("inf"), 2.0]
    source = write(tmp_path / "in.parquet", pa.table({"category": VALUES, "price": prices}))
    output = tmp_path / "out.jsonl"
    code, _, err = run(
        "validate", "--model", str(model_dir), str(source), "--column", "category",
        "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    lines = output.read_text("utf-8").splitlines()
    rows = [json.loads(line, parse_constant=_no_constant) for line in lines]  # strict JSON
    assert [r["price"] for r in rows] == [1.5, None, None, None, None, 2.0]
    assert [r["verdict"] for r in rows] == VERDICTS


def test_a_jsonl_output_writes_float32_cells_as_they_are_written(
    model_dir: Path, tmp_path: Path
) -> None:
    # 0.1 in a float32 column came out as its float64 widening, 0.10000000149011612, in the
    # validated column as in the others, though it was judged as '0.1' and CSV wrote 0.1.
    weights = pa.array([0.1, 2.5, None, 0.3, float("nan"), 1.0], pa.float32())
    table = pa.table({"category": VALUES, "weight": weights, "size": weights})
    source = write(tmp_path / "in.parquet", table)
    for column in ("category", "size"):
        output = tmp_path / f"out-{column}.jsonl"
        code, _, err = run(
            "validate", "--model", str(model_dir), str(source), "--column", column,
            "--output", str(output),
        )  # fmt: skip
        assert code == 0, err
        rows = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
        assert [r["weight"] for r in rows] == [0.1, 2.5, None, 0.3, None, 1.0]
        assert [r["size"] for r in rows] == [0.1, 2.5, None, 0.3, None, 1.0]
        assert [r["category"] for r in rows] == VALUES


def test_a_uuid_column_is_judged_as_its_text(model_dir: Path, tmp_path: Path) -> None:
    # It was refused once the model had loaded, as if it held lists: "holds
    # extension<arrow.uuid> values; validate needs one value per cell".
    ids = [uuid.UUID(int=n).bytes for n in (1, 2)] + [None]
    cells = pa.ExtensionArray.from_storage(pa.uuid(), pa.array(ids, pa.binary(16)))
    table = pa.table({"category": cells, "n": [1, 2, 3]})
    source = write(tmp_path / "in.parquet", table)
    output = tmp_path / "out.parquet"
    code, _, err = run(
        "validate", "--model", str(model_dir), str(source), "--output", str(output),
        "--column", "category",
    )  # fmt: skip
    assert code == 0, err
    result = pq.read_table(output)
    assert result.select(table.column_names) == table
    texts = [str(u) for u in cells.to_pylist()[:2]] + [None]
    expected = [r.verdict.value for r in Validator.load(model_dir).validate(texts)]
    assert result.column("verdict").to_pylist() == expected
    assert expected[2] == "missing" and "missing" not in expected[:2]


def test_valid_values_are_read_as_the_validated_cells_are(tmp_path: Path) -> None:
    # Zip codes in a float column (pandas' integers with gaps): 35233.0 is the cell '35233'.
    valid = tmp_path / "valid.parquet"
    pq.write_table(pa.table({"zip": [35233.0, 35957.0, 36301.0, 35150.0, None]}), valid)
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"zip": [35233.0, 35957.0, 36301.0]}), source)
    output = tmp_path / "out.csv"
    code, _, err = run("validate", "--valid", str(valid), str(source), "--output", str(output))
    assert code == 0, err
    rows = read_table(output).to_pylist()
    assert [(r["score"], r["nearest"]) for r in rows] == [
        ("0", "35233"),
        ("0", "35957"),
        ("0", "36301"),
    ]
    code, _, err = run(
        "validate", "--valid", "-", "--valid-column", "zip", str(source), stdin="35233\n35957\n"
    )
    assert code == 1 and "standard input has no column 'zip'; its columns are: value" in err


def test_jsonl_outputs_have_the_same_report_fields_whatever_the_input(
    model_dir: Path, tmp_path: Path
) -> None:
    # From a CSV input, a valid value's suggestion was null, from a JSONL input "".
    table = pa.table({"category": [*VALUES, None]})
    outputs = []
    for suffix in (".csv", ".jsonl", ".parquet"):
        source = write(tmp_path / f"in{suffix}", table)
        output = tmp_path / f"out{suffix}.jsonl"
        code, _, err = run(
            "validate", "--model", str(model_dir), str(source), "--output", str(output)
        )
        assert code == 0, err
        rows = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
        outputs.append([{k: r[k] for k in ("nearest", "suggestion")} for r in rows])
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0][0] == {"nearest": "Sweaters", "suggestion": ""}
    assert outputs[0][-1] == {"nearest": "", "suggestion": ""}


def test_an_output_that_cannot_hold_a_column_fails_before_the_model_is_loaded(
    tmp_path: Path,
) -> None:
    table = pa.table({"category": ["Jeans", "Toaster"], "tags": [[1, 2], []]})
    source = write(tmp_path / "in.parquet", table)
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    # An empty folder as --model: had the model been loaded first, that would be the error.
    args = ["validate", "--model", str(not_a_model), str(source), "--column", "category"]
    code, _, err = run(*args, "--output", str(tmp_path / "o.csv"))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "cannot write" in err and "list<" in err and "write .parquet or .jsonl" in err
    assert not (tmp_path / "o.csv").exists()
    code, _, err = run(*args, "--output", str(tmp_path / "o.jsonl"))
    assert code == 1 and "cannot write" not in err  # JSONL holds lists: the model is the error


@pytest.mark.parametrize(
    "cells",
    [
        pa.array([["Jeans"], []]),
        pa.array([{"name": "Jeans"}, {"name": "Socks"}]),
        pa.array([[("k", "Jeans")], None], pa.map_(pa.string(), pa.string())),
    ],
    ids=["list", "struct", "map"],
)
def test_a_column_of_lists_or_objects_fails_before_the_model_is_loaded(
    tmp_path: Path, cells: pa.Array
) -> None:
    # The error came once the model had loaded, seconds later.
    not_a_model = tmp_path / "empty"  # had the model been loaded first, the error
    not_a_model.mkdir()
    for suffix in (".parquet", ".jsonl"):
        source = write(tmp_path / f"in{suffix}", pa.table({"category": cells}))
        code, _, err = run("validate", "--model", str(not_a_model), str(source))
        assert code == 1 and len(err.strip().splitlines()) == 1
        assert "column 'category' holds" in err and "validate needs one value per cell" in err


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_a_file_of_valid_values_or_negatives_holding_lists_is_refused(
    tmp_path: Path, suffix: str
) -> None:
    # Its lists were read as their Python text: reference values "['Sweaters', 'Jeans']".
    lists = write(
        tmp_path / f"lists{suffix}", pa.table({"value": [["Sweaters", "Jeans"], ["Socks"]]})
    )
    source = write(tmp_path / "in.csv", pa.table({"category": VALUES}))
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nJeans\n", "utf-8")
    for args in (["--valid", str(lists)], ["--valid", str(valid), "--out-of-domain", str(lists)]):
        code, _, err = run("validate", *args, str(source))
        assert code == 1 and len(err.strip().splitlines()) == 1
        assert f"{lists}: column 'value' holds list<" in err and "one value per cell" in err


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('cat\nJeans\n"Sweaters\nSocks\nToaster\n', "the quote that opens a value on line 3"),
        ('id,cat\n1,Jeans\n2,"Best" Sellers\n3,Socks\n', "line 3: text after a closing quote"),
    ],
)
def test_a_csv_file_with_broken_quotes_is_a_one_line_error_not_lost_rows(
    tmp_path: Path, content: str, problem: str
) -> None:
    # pyarrow read the first as two rows (the rest of the file in one value) and the second
    # as 'Best Sellers', both without a word.
    source = tmp_path / "in.csv"
    source.write_text(content, "utf-8")
    valid = tmp_path / "valid.txt"
    valid.write_text("Jeans\nSocks\n", "utf-8")
    output = tmp_path / "out.csv"
    code, _, err = run(
        "validate", "--valid", str(valid), str(source), "--column", "cat", "--output", str(output)
    )
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert f"cannot read {source} as csv: {problem}" in err
    assert not output.exists() and source.read_text("utf-8") == content


def test_quotes_that_do_not_quote_a_tsv_file_are_its_text(tmp_path: Path) -> None:
    source = tmp_path / "in.tsv"
    source.write_text('id\tcat\n1\t"Jeans\n2\tSocks\n3\t"Best" Sellers\n4\t5" Heels\n', "utf-8")
    assert read_table(source).column("cat").to_pylist() == [
        '"Jeans',
        "Socks",
        '"Best" Sellers',
        '5" Heels',
    ]
    quoted = tmp_path / "quoted.tsv"  # as CSV writers quote: the quotes are not text
    quoted.write_text('id\tcat\n1\t"Tank\tTops"\n2\t"Best ""Sellers"""\n', "utf-8")
    assert read_table(quoted).column("cat").to_pylist() == ["Tank\tTops", 'Best "Sellers"']
    lines = tmp_path / "ok.csv"
    lines.write_text('id,cat\n1,"a, b"\n2,"two\nlines"\n3,5" Heels\n', "utf-8")
    assert read_table(lines).column("cat").to_pylist() == ["a, b", "two\nlines", '5" Heels']


def test_a_csv_with_an_unnamed_index_column_is_written_without_quotes(tmp_path: Path) -> None:
    # pandas' to_csv writes its index as a first column without a name: its empty name had
    # every text cell of the output quoted, though ',category' reads back as it was.
    source = tmp_path / "in.csv"
    source.write_text(",category\n0,Jeans\n1,Toaster\n", "utf-8")
    valid = tmp_path / "valid.txt"
    valid.write_text("Jeans\nSocks\n", "utf-8")
    output = tmp_path / "out.csv"
    args = ["--valid", str(valid), str(source), "--column", "category", "--output", str(output)]
    code, _, err = run("validate", *args)
    assert code == 0, err
    lines = output.read_text("utf-8").splitlines()
    assert lines[0] == ",category,verdict,score,nearest,suggestion" and '"' not in lines[1]
    assert [line.split(",")[:2] for line in lines[1:]] == [["0", "Jeans"], ["1", "Toaster"]]
    assert read_table(output).column_names[:2] == ["", "category"]


@pytest.mark.parametrize("end", [b"\r\n", b"\r"])
def test_a_csv_output_keeps_the_inputs_line_ends_and_byte_order_mark(
    tmp_path: Path, end: bytes
) -> None:
    # Old Mac line ends ('\r', Excel for Mac's CSV) were read, but written as '\n'.
    source = tmp_path / "in.csv"
    lines = [b"\xef\xbb\xbfid,cat", b"1,Jeans", b"2,Toaster", b'3,"Socks, Wool"']
    source.write_bytes(b"".join(line + end for line in lines))
    valid = tmp_path / "valid.txt"
    valid.write_text("Jeans\nSocks\n", "utf-8")
    output = tmp_path / "out.csv"
    code, _, err = run(
        "validate", "--valid", str(valid), str(source), "--column", "cat", "--output", str(output)
    )
    assert code == 0, err
    written = output.read_bytes()
    assert written.startswith(b"\xef\xbb\xbf") and written.count(end) == 4
    assert written.count(b"\r") + written.count(b"\n") == 4 * len(end)  # no other line ends
    rows = read_table(output).to_pylist()
    assert [(r["id"], r["cat"]) for r in rows] == [
        ("1", "Jeans"),
        ("2", "Toaster"),
        ("3", "Socks, Wool"),
    ]


def test_evaluate_reads_labelled_values_from_standard_input_in_the_format_named(
    tmp_path: Path,
) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nJeans\nCardigan\nTrousers\n", "utf-8")
    rows = "".join(
        json.dumps({"value": v, "label": label}) + "\n"
        for v, label in zip(VALUES, VERDICTS, strict=True)
    )
    code, out, err = run(
        "evaluate", "--valid", str(valid), "--data", "-", "--format", "jsonl", stdin=rows
    )
    assert code == 0, err
    scores = out.split("true \\ verdict")[0]
    lines = {line.split()[0]: line.split()[1:] for line in scores.splitlines() if line.strip()}
    assert lines["anomaly"] == ["1.0000", "1.0000", "1.0000", "3"]
    code, _, err = run("evaluate", "--valid", str(valid), "--data", "-", stdin=rows)
    assert code == 2 and "read as text: name its format with --format" in err
    code, _, err = run("evaluate", "--valid", "-", "--data", "-", stdin=rows)
    assert code == 2 and "--valid and --data cannot both be standard input" in err


def test_evaluate_names_a_labelled_file_without_rows(tmp_path: Path) -> None:
    # It said 'the labelled data is empty', naming no file.
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nJeans\nCardigan\n", "utf-8")
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("value,label\n", "utf-8")
    code, _, err = run("evaluate", "--valid", str(valid), "--data", str(labelled))
    assert code == 1
    assert err.splitlines()[-1] == f"Error: {labelled} has a header but no rows"


def test_evaluate_with_a_model_says_standard_input_was_read_as_text(
    model_dir: Path, tmp_path: Path
) -> None:
    # With --model, labelled CSV piped without --format said 'triplet data needs columns
    # anchor, positive, negative; it has: value', not that it was read as text.
    labelled = "value,label\nSweaters,valid\nToaster,out_of_domain\n"
    code, _, err = run("evaluate", "--model", str(model_dir), "--data", "-", stdin=labelled)
    assert code == 2
    assert err.splitlines()[-1] == (
        "Error: standard input (read as text: name its format with --format) holds neither a "
        "label column nor triplets (see 'main evaluate --help')"
    )
    args = ["evaluate", "--model", str(model_dir), "--data", "-", "--format", "csv"]
    code, out, err = run(*args, stdin=labelled)
    assert code == 0 and "AUROC of the score (anomaly vs valid)" in out, err
    # A pipe (<(zcat labelled.csv.gz)) is a path without a suffix: it was told it 'has: value'.
    piped = tmp_path / "63"
    piped.write_text(labelled, "utf-8")
    for source in (["--model", str(model_dir)], ["--valid", str(piped)]):
        code, _, err = run("evaluate", *source, "--data", str(piped))
        assert code == 2 and err.splitlines()[-1].startswith(
            f"Error: {piped} (read as text: name its format with --format) holds neither a "
            "label column nor triplets"
        )


def test_evaluate_reads_labels_as_people_write_them_from_the_column_named(tmp_path: Path) -> None:
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nJeans\nCardigan\nTrousers\n", "utf-8")
    labelled = write(
        tmp_path / "labelled.csv",
        pa.table(
            {
                "id": ["1", "2", "3", "4", "5"],
                "category": ["Sweaters", "Car Battery", "<b>Jeans</b>", None, "Jeans"],
                "label": ["Valid", "Out of domain", " MALFORMED", "missing", "out-of-domain"],
            }
        ),
    )
    code, out, err = run("evaluate", "--valid", str(valid), "--data", str(labelled))
    assert code == 1 and "choose the values' column with --column" in err
    args = ("evaluate", "--valid", str(valid), "--data", str(labelled), "--column", "category")
    code, out, err = run(*args)
    assert code == 0, err
    assert "no value, judged missing" not in err  # labelled so
    scores = out.split("true \\ verdict")[0]
    lines = {line.split()[0]: line.split()[1:] for line in scores.splitlines() if line.strip()}
    assert lines["missing"] == ["1.0000", "1.0000", "1.0000", "1"]
    # 'Jeans' labelled out_of_domain is judged valid: the label's recall is 1/2.
    assert lines["out_of_domain"] == ["1.0000", "0.5000", "0.6667", "2"]
    assert "missing         0      0              0          1" in out
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"value": [["Sweaters"], ["Jeans"]], "label": ["valid"] * 2}), nested)
    code, _, err = run("evaluate", "--valid", str(valid), "--data", str(nested))
    assert code == 1 and "column 'value' holds list<element: string> values" in err


def test_evaluate_reads_the_valid_column_named_like_the_values_column(tmp_path: Path) -> None:
    # As validate does (and the README says), --valid's column defaults to the one named like
    # the values' column; evaluate said 'catalog.csv has several columns (id, category)'.
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("id,category\n1,Sweaters\n2,Jeans\n3,Cardigan\n4,Trousers\n", "utf-8")
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("category,label\nSweaters,valid\nCar Battery,out_of_domain\n", "utf-8")
    code, out, err = run("evaluate", "--valid", str(catalog), "--data", str(labelled))
    assert code == 0, err
    assert "valid           1      0              0          0" in out
    args = ["evaluate", "--valid", str(catalog), "--data", str(labelled), "--valid-column", "id"]
    code, out, err = run(*args)  # the column named still wins: values '1' to '4'
    assert code == 0, err
    assert "valid           0" in out
    code, _, err = run("evaluate", "--valid-column", "id", "--data", str(labelled))
    assert code == 2 and "give --model (a trained model folder) or --valid" in err


@pytest.mark.parametrize("kind", [pa.float32(), pa.float16()], ids=str)
def test_narrow_float_values_are_judged_and_written_as_written(
    tmp_path: Path, kind: pa.DataType
) -> None:
    # 0.1 in float32 read back as 0.10000000149011612: no listed value matched it. In float16
    # pyarrow's text, 0.0999755859375, was judged and written to CSV where numpy's is '0.1'.
    codes = pa.array([0.1, 2.5, 7.0], kind)
    valid = tmp_path / "valid.parquet"
    pq.write_table(pa.table({"code": codes}), valid)
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"code": pa.array([0.1, 0.1, 7.0, None], kind)}), source)
    output = tmp_path / "out.parquet"
    code, _, err = run("validate", "--valid", str(valid), str(source), "--output", str(output))
    assert code == 0, err
    written = pq.read_table(output)
    assert written.schema.field("code").type == kind  # the input column as it was
    rows = written.to_pylist()
    assert [(r["verdict"], r["score"], r["nearest"]) for r in rows[:3]] == [
        ("valid", 0.0, "0.1"),
        ("valid", 0.0, "0.1"),
        ("valid", 0.0, "7"),
    ]
    text = tmp_path / "out.csv"
    code, _, err = run("validate", "--valid", str(valid), str(source), "--output", str(text))
    assert code == 0, err
    assert [line.split(",")[:2] for line in text.read_text().splitlines()] == [
        ["code", "verdict"], ["0.1", "valid"], ["0.1", "valid"], ["7", "valid"], ["", "missing"]
    ]  # fmt: skip


def _feed(pipe: Path, content: str) -> threading.Thread:
    """A thread writing ``content`` into the FIFO ``pipe`` once a reader opens it."""
    thread = threading.Thread(target=pipe.write_text, args=(content, "utf-8"), daemon=True)
    thread.start()
    return thread


def test_pipes_are_read_as_files_of_their_name(tmp_path: Path) -> None:
    # '<(zcat products.csv.gz)' or a FIFO can be read once, and the readers read a file more
    # than once (a CSV's header, rows and quotes): every such input failed, 'lseek failed'.
    source, valid = tmp_path / "in.csv", tmp_path / "valid.txt"
    for pipe in (source, valid):
        os.mkfifo(pipe)
    feeders = [
        _feed(source, 'id,category\r\n1,Sweaters\r\n2,"Car Battery"\r\n3,Jeans\r\n'),
        _feed(valid, "Sweaters\nJeans\nCardigan\nHoodies\n"),
    ]
    output = tmp_path / "out.csv"
    args = ["validate", "--valid", str(valid), str(source), "--column", "category"]
    code, _, err = run(*args, "--output", str(output))
    for feeder in feeders:
        feeder.join(timeout=10)
    assert code == 0, err
    assert output.read_bytes().startswith(b"id,category,verdict,score,nearest,suggestion\r\n")
    assert read_table(output).column("verdict").to_pylist() == ["valid", "out_of_domain", "valid"]
    feeders = [_feed(source, 'id,category\n1,"Sweaters\n'), _feed(valid, "Sweaters\n")]
    code, _, err = run(*args)  # errors name the pipe, not the copy read
    for feeder in feeders:
        feeder.join(timeout=10)
    assert code == 1 and f"cannot read {source} as csv: the quote that opens" in err


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("excel.csv", "id,category\r\n1,Sweaters\r\n".encode("utf-16"), "it is UTF-16 text"),
        ("excel.txt", "id\tcategory\r\n1\tSweaters\r\n".encode("utf-16"), "it is UTF-16 text"),
        ("in.csv", gzip.compress(b"id,category\n1,Sweaters\n"), "it is gzip-compressed; add .gz"),
        (
            "in.csv.gz",
            gzip.compress(gzip.compress(b"id,category\n")),
            "it is gzip-compressed; decompress it once more",
        ),
        ("in.jsonl", b"PK\x03\x04\x14\x00", "it is a zip file (an Excel workbook?)"),
        ("in.csv", b"PAR1\x15\x04\x15\x10\x15\x14L", "it is a Parquet file; name it .parquet"),
    ],
    ids=["utf16-csv", "utf16-tabs", "gzip", "gzip-twice", "workbook", "parquet"],
)
def test_a_file_that_is_not_utf8_text_says_what_it_is(
    tmp_path: Path, name: str, content: bytes, problem: str
) -> None:
    # Its bytes were read as text: 'CSV parse error: Expected 2 columns, got 1: \x00', or a
    # gzip file's binary shown in the message.
    source = tmp_path / name
    source.write_bytes(content)
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\n", "utf-8")
    for args in (
        ["validate", "--valid", str(valid), str(source)],
        ["validate", "--valid", str(source), str(valid)],
    ):
        code, _, err = run(*args)
        assert code == 1 and f"{source} is not valid UTF-8 text: {problem}" in err
        assert len(err.strip().splitlines()) == 1 and "\x00" not in err
    for text_format in ("csv", "text"):
        args = ["validate", "--valid", str(valid), "-", "--format", text_format]
        code, _, err = run(*args, stdin=content)
        kind = problem.split(";")[0]
        assert code == 1 and f"standard input is not valid UTF-8 text: {kind}" in err
        # It has no name to add '.gz' to: it was told to.
        assert "to its name" not in err
        if "gzip-compressed; add .gz" in problem:
            assert err.rstrip().endswith("gzip-compressed; decompress it first")


def test_a_json_file_is_not_judged_a_line_at_a_time(tmp_path: Path) -> None:
    # Read as text, as any suffix of no table format: its lines '[', '{', '"category": ...'
    # were judged as values, without a word.
    source = tmp_path / "products.json"
    source.write_text(json.dumps([{"category": v} for v in VALUES], indent=1), "utf-8")
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nJeans\n", "utf-8")
    for args, hint in (
        ([str(valid), str(source)], " or pass --format jsonl"),
        ([str(source), str(valid)], ""),  # --format names INPUT's format, not --valid's
    ):
        code, _, err = run("validate", "--valid", *args)
        assert code == 1 and err.strip() == (
            f"Error: {source} is JSON, which catembed reads as JSON Lines (an object a line): "
            f"name it .jsonl{hint}"
        )
    lines = tmp_path / "part-0000.json"  # JSON Lines as Spark names them
    lines.write_text("".join(json.dumps({"category": v}) + "\n" for v in VALUES), "utf-8")
    assert read_table(lines, fmt="jsonl").column("category").to_pylist() == VALUES


def test_a_npy_file_is_no_table_so_it_is_read_as_text(tmp_path: Path) -> None:
    # '.npy' (what encode writes) was read as CSV: a text file of values lost its first value
    # to the header, and an array was 'CSV parse error' with its bytes in the message.
    values = tmp_path / "values.npy"
    values.write_bytes(b"Sweaters\nJeans\n")
    assert read_table(values).column("value").to_pylist() == ["Sweaters", "Jeans"]
    array = tmp_path / "embeddings.npy"
    np.save(array, np.zeros((2, 3), np.float32))
    for args in ([str(values), str(array)], [str(array), str(values)]):
        code, _, err = run("validate", "--valid", *args)
        assert code == 1 and f"{array} is not valid UTF-8 text: it is a NumPy array" in err
        assert len(err.strip().splitlines()) == 1 and "\x00" not in err


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_a_table_without_columns_says_so(tmp_path: Path, suffix: str) -> None:
    # It was told it 'has several columns (); choose one with --column'.
    source = tmp_path / f"empty{suffix}"
    if suffix == ".parquet":
        pq.write_table(pa.table({}), source)
    else:
        source.write_text("{}\n{}\n", "utf-8")  # rows without fields
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nJeans\n", "utf-8")
    other = write(tmp_path / "in.csv", pa.table({"category": VALUES}))
    for args in ([str(valid), str(source)], [str(source), str(other)]):
        code, _, err = run("validate", "--valid", *args)
        assert code == 1 and err.strip() == f"Error: {source} has no columns"
    code, _, err = run("evaluate", "--valid", str(valid), "--data", str(source))
    assert code == 1 and err.strip().endswith("it has: no columns")


@pytest.mark.parametrize("end", ["\n", ""])
def test_a_header_alone_is_a_file_without_rows_whatever_its_last_line_end(
    tmp_path: Path, end: str
) -> None:
    # Without a line end after it, pyarrow called the header an empty file that it
    # 'cannot infer number of columns' of.
    source, valid = tmp_path / "in.csv", tmp_path / "valid.tsv"
    source.write_text("id,category" + end, "utf-8")
    valid.write_text("category" + end, "utf-8")
    other = tmp_path / "other.txt"
    other.write_text("Sweaters\n", "utf-8")
    code, _, err = run("validate", "--valid", str(other), str(source), "--column", "category")
    assert code == 1 and f"{source} has no rows to validate" in err
    code, _, err = run("validate", "--valid", str(valid), str(other))
    assert code == 1 and f"no valid values found in {valid}" in err
    assert read_table(source).column_names == ["id", "category"]


def test_a_column_named_in_another_case_or_without_its_spaces_gets_a_hint(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id, Category\n1, Sweaters\n", "utf-8")  # a space after each comma
    valid = tmp_path / "valid.csv"
    valid.write_text("ID,CATEGORY\n1,Sweaters\n", "utf-8")
    code, _, err = run("validate", "--valid", str(valid), str(source), "--column", "category")
    assert code == 1 and "(did you mean ' Category'?)" in err
    args = ["--valid", str(valid), "--valid-column", "category", str(source)]
    code, _, err = run("validate", *args, "--column", " Category")
    assert code == 1 and "(did you mean 'CATEGORY'?)" in err


def test_a_compressed_parquet_input_is_decompressed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Writing a Parquet output with the input's column types read the input's schema again,
    # which for a compressed file meant decompressing all of it a second time.
    source = tmp_path / "in.parquet.gz"
    schema = pa.schema([pa.field("category", pa.large_string()), pa.field("id", pa.int64())])
    table = pa.table([VALUES, range(6)], schema=schema)
    with pa.CompressedOutputStream(str(source), "gzip") as stream:
        pq.write_table(table, stream)
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nJeans\nSocks\n", "utf-8")
    opened: list[str] = []
    real = pa.input_stream

    def counted(name: str, **kwargs: str | None) -> pa.NativeFile:
        opened.append(name)
        return real(name, **kwargs)

    monkeypatch.setattr(pa, "input_stream", counted)
    output = tmp_path / "out.parquet"
    code, _, err = run(
        "validate", "--valid", str(valid), str(source), "--column", "category",
        "--output", str(output),
    )  # fmt: skip
    assert code == 0, err
    assert opened.count(str(source)) == 1
    result = pq.read_table(output)
    assert result.select(table.column_names) == table  # large_string as written
    assert result.column("verdict").to_pylist() == VERDICTS


def test_a_csv_file_read_as_tsv_says_its_header_is_one_column(tmp_path: Path) -> None:
    # Its columns were listed as 'id,category', which reads as two columns, both there.
    source = tmp_path / "in.csv"
    source.write_text("id,category\n1,Sweaters\n", "utf-8")
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nJeans\n", "utf-8")
    args = ["validate", "--valid", str(valid), str(source), "--column", "category"]
    code, _, err = run(*args, "--format", "tsv")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.strip() == (
        f"Error: {source} has no column 'category': read as TSV, its header is one column, "
        "'id,category' (comma-separated? pass --format csv)"
    )
    code, out, err = run(*args)
    assert code == 0 and "column 'category': 1 row" in out, err


@pytest.mark.parametrize(
    ("name", "text", "fmt", "hint"),
    [
        ("in.csv", "id,category\n1,Sweaters\n", "tsv", "comma-separated? pass --format csv"),
        # 'name it .tsv or pass --format tsv', of a file named .tsv.
        ("in.tsv", "id\tcategory\n1\tSweaters\n", "csv", "tab-separated? pass --format tsv"),
    ],
)
def test_every_command_says_a_header_read_with_the_wrong_delimiter_is_one_column(
    tmp_path: Path, name: str, text: str, fmt: str, hint: str
) -> None:
    # encode and evaluate listed 'its columns are: id,category', or said 'no label column'.
    source = tmp_path / name
    source.write_text(text, "utf-8")
    header = repr(text.split("\n")[0])
    read_as = f"read as {fmt.upper()}, its header is one column, {header} ({hint})"
    valid = tmp_path / "valid.txt"
    valid.write_text("Sweaters\nJeans\n", "utf-8")
    column = ["--column", "category", "--format", fmt]
    code, _, err = run("validate", "--valid", str(valid), str(source), *column)
    assert (code, err.strip()) == (1, f"Error: {source} has no column 'category': {read_as}")
    code, _, err = run("encode", "--model", str(tmp_path), "--input", str(source), *column)
    assert (code, err.strip()) == (1, f"Error: {source} has no column 'category': {read_as}")
    labelled = tmp_path / f"labelled.{name.split('.')[1]}"
    labelled.write_text(text.replace("id", "label").replace("category", "value"), "utf-8")
    code, _, err = run("evaluate", "--valid", str(valid), "--data", str(labelled), "--format", fmt)
    assert (code, err.strip()) == (
        1,
        f"Error: {labelled} holds neither labelled values nor triplets: "
        + read_as.replace("id", "label").replace("category", "value"),
    )
    # A --valid file is read as its suffix says.
    wrong = tmp_path / f"valid.{fmt}"
    wrong.write_text(text, "utf-8")
    args = ["--valid", str(wrong), "--valid-column", "category", str(valid)]
    code, _, err = run("validate", *args)
    assert (code, err.strip()) == (1, f"Error: {wrong} has no column 'category': {read_as}")


def test_a_run_that_fails_shows_its_error_alone_and_one_that_succeeds_its_warnings(
    tmp_path: Path,
) -> None:
    # The warning about the input came first, on a line of its own above the error.
    valid = tmp_path / "valid.txt"
    valid.write_text("Jeans\nSocks\n", "utf-8")
    stray = tmp_path / "stray.tsv"  # quotes read as text, then a row of three cells
    stray.write_text('id\tcat\n1\t"Jeans\n2\tSocks\textra\n', "utf-8")
    code, _, err = run("validate", "--valid", str(valid), str(stray), "--column", "cat")
    assert code == 1
    assert err.splitlines() == [
        f"Error: cannot read {stray} as tsv: CSV parse error: Expected 2 columns, got 3: "
        "2\tSocks\textra"
    ]
    doubtful = tmp_path / "doubtful.txt"
    doubtful.write_text("Jeans\nN/A\nSocks\n", "utf-8")
    args = ["validate", "--valid", str(doubtful), "--model", str(tmp_path / "none"), str(valid)]
    code, _, err = run(*args)
    assert code == 1 and err.splitlines() == [
        f"Error: model not found: {tmp_path / 'none'} is neither a folder nor a hub id"
    ]
    quoted = tmp_path / "quoted.tsv"
    quoted.write_text('id\tcat\n1\t"Jeans\n2\tSocks\n', "utf-8")
    code, out, err = run("validate", "--valid", str(doubtful), str(quoted), "--column", "cat")
    assert code == 0 and "column 'cat': 2 rows" in out
    assert err.splitlines() == [  # as they were logged
        f"{quoted}: quotes read as text, as they do not quote values (the quote that opens a "
        "value on line 2 never closes)",
        "1 of the valid values looks like a mistake (kept as valid): 'N/A' (a placeholder)",
    ]


def test_counted_missing_cells_are_one_row_of_the_worst_values(tmp_path: Path) -> None:
    # An empty, a blank and a tab-only cell were each a '(missing)' row of their own.
    source = tmp_path / "in.csv"
    source.write_text("id,category\n1,Jeans\n2,\n3, \n4,Sokcs\n5,\t\n6,\n", "utf-8")
    valid = tmp_path / "valid.txt"
    valid.write_text("Jeans\nSocks\n", "utf-8")
    args = ["validate", "--valid", str(valid), str(source), "--column", "category"]
    code, out, err = run(*args, "--count-missing")
    assert code == 0, err
    assert "anomaly rate: 83.33% (out_of_domain + malformed + missing)" in out
    worst = out.split("suggestion  nearest")[1].strip().splitlines()[1:]
    assert [row.split()[:3] for row in worst] == [
        ["(missing)", "4", "missing"],
        ["Sokcs", "1", "malformed"],
    ]
    code, out, err = run(*args)
    assert code == 0 and "(missing)" not in out, err


def test_missing_cells_count_as_one_distinct_value(tmp_path: Path) -> None:
    # A null, an empty, a blank and a tab-only cell counted as four distinct values, though
    # the worst values show them as one '(missing)' row.
    source = tmp_path / "in.jsonl"
    cells = ["Jeans", None, "", "  ", "\t", "Socks", "Jeans", None]
    source.write_text("".join(json.dumps({"category": c}) + "\n" for c in cells), "utf-8")
    valid = tmp_path / "valid.txt"
    valid.write_text("Jeans\nSocks\n", "utf-8")
    args = ["validate", "--valid", str(valid), str(source), "--column", "category"]
    code, out, err = run(*args, "--count-missing")
    assert code == 0, err
    assert "column 'category': 8 rows, 3 distinct values\n" in out
    summary = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert summary["valid"] == ["3", "37.50%", "2"]
    assert summary["missing"] == ["5", "62.50%", "1"]
    assert [line.split()[:2] for line in out.splitlines() if "(missing)" in line] == [
        ["(missing)", "5"]
    ]
    code, out, err = run(*args, "--output", str(tmp_path / "out.csv"))
    assert code == 0 and "column 'category': 8 rows, 3 distinct values\n" in out, err


def test_a_boolean_is_judged_as_json_writes_it_in_every_format(tmp_path: Path) -> None:
    # A JSONL column of booleans, or a Parquet one, was judged as 'True', and a JSONL column
    # mixing them with text as 'true': listed as true, they were 'same value, different
    # spelling'. Text cells are judged as written.
    valid = tmp_path / "valid.txt"
    valid.write_text("true\nfalse\n", "utf-8")
    booleans = tmp_path / "booleans.jsonl"
    booleans.write_text('{"c": true}\n{"c": false}\n{"c": null}\n', "utf-8")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"c": true}\n{"c": "false"}\n{"c": null}\n', "utf-8")
    parquet = tmp_path / "booleans.parquet"
    pq.write_table(pa.table({"c": [True, False, None]}), parquet)
    text = tmp_path / "text.csv"
    text.write_text("c\ntrue\nFalse\n\n", "utf-8")
    for source in (booleans, mixed, parquet, text):
        output = tmp_path / f"{source.name}.out.jsonl"
        args = ["validate", "--valid", str(valid), str(source), "--column", "c"]
        code, _, err = run(*args, "--output", str(output))
        assert code == 0, err
        rows = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
        judged = [(r["verdict"], r["suggestion"]) for r in rows]
        second = ("malformed", "false") if source == text else ("valid", "")
        assert judged == [("valid", ""), second, ("missing", "")], source


@pytest.mark.parametrize(
    ("stop", "code", "message"),
    [(KeyboardInterrupt, 1, "interrupted"), (_Terminated, 143, "terminated")],
)
def test_a_run_stopped_by_ctrl_c_or_sigterm_drops_its_warnings_as_a_failed_one_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: type, code: int, message: str
) -> None:
    # The warnings held until the end were printed above 'Error: interrupted' (SIGTERM's
    # handler raises _Terminated where Ctrl-C raises KeyboardInterrupt).
    import catembed.columns

    def judging(*args: object, **kwargs: object) -> None:
        raise stop

    doubtful = tmp_path / "doubtful.txt"
    doubtful.write_text("Jeans\nN/A\nSocks\n", "utf-8")
    args = ["validate", "--valid", str(doubtful), str(doubtful)]
    assert "'N/A'" in run(*args)[2]  # the warning held back, shown once the run succeeds
    monkeypatch.setattr(catembed.columns, "validate_table", judging)
    assert run(*args)[::2] == (code, f"Error: {message}\n")


def test_a_validator_saved_with_booleans_as_python_wrote_them_still_accepts_booleans(
    tmp_path: Path,
) -> None:
    # catembed read a boolean as Python's 'True' before it read it as 'true', so a validator
    # saved then from a boolean column lists 'True' and 'False': loaded now, every boolean of
    # a boolean column was malformed, 'true' for 'True'. Text cells stay as written, and a
    # reference holding 'True' among other values judges booleans as JSON writes them.
    from catembed.validation import Validator

    folders = {}
    for name, values in (("booleans", ["True", "False"]), ("texts", ["True", "False", "Maybe"])):
        folders[name] = tmp_path / name
        Validator.from_values(values).save(folders[name])
        saved = json.loads((folders[name] / VALIDATOR_FILE).read_text("utf-8"))
        assert saved["reference"] == values  # as an earlier catembed saved it from booleans
    parquet = tmp_path / "flags.parquet"
    pq.write_table(pa.table({"flag": [True, False, None, True]}), parquet)
    jsonl = tmp_path / "flags.jsonl"
    jsonl.write_text('{"flag": false}\n{"flag": true}\n{"flag": false}\n', "utf-8")
    text = tmp_path / "flags.csv"
    text.write_text("flag\nTrue\ntrue\nFalse\n", "utf-8")

    def judged(folder: Path, source: Path) -> list[tuple[str, str, str]]:
        output = tmp_path / f"{folder.name}-{source.name}.out.jsonl"
        args = ["validate", "--model", str(folder), str(source), "--column", "flag"]
        code, _, err = run(*args, "--output", str(output))
        assert code == 0, err
        rows = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
        return [(r["verdict"], r["nearest"], r["suggestion"]) for r in rows]

    true, false = ("valid", "True", ""), ("valid", "False", "")
    assert judged(folders["booleans"], parquet) == [true, false, ("missing", "", ""), true]
    assert judged(folders["booleans"], jsonl) == [false, true, false]
    case_noise = ("malformed", "True", "True")  # the text 'true', as before
    assert judged(folders["booleans"], text) == [true, case_noise, false]
    assert judged(folders["texts"], text) == [true, case_noise, false]
    assert [v for v, _, _ in judged(folders["texts"], parquet)] == [
        "malformed", "malformed", "missing", "malformed"
    ]  # fmt: skip


def test_evaluate_says_a_file_without_a_label_column_holds_neither_labels_nor_triplets(
    model_dir: Path, tmp_path: Path
) -> None:
    # A labelled file whose label column was misnamed was told 'triplet data needs columns
    # anchor, positive, negative; it has: value, lab', as if triplets had been meant.
    data = tmp_path / "labelled.csv"
    data.write_text("value,lab\nJeans,valid\n", "utf-8")
    for source in (["--model", str(model_dir)], ["--valid", str(data)]):
        code, _, err = run("evaluate", *source, "--data", str(data))
        assert (code, err.splitlines()) == (
            1,
            [
                f"Error: {data} holds neither labelled values (a label column) nor triplets "
                "(columns anchor, positive, negative); it has: value, lab"
            ],
        )
    partial = tmp_path / "partial.csv"  # some triplet columns: named as missing
    partial.write_text("anchor,positive\nJeans,Skirts\n", "utf-8")
    code, _, err = run("evaluate", "--model", str(model_dir), "--data", str(partial))
    assert code == 1 and err.endswith(
        "needs columns anchor, positive, negative; it has: anchor, positive\n"
    )


def test_evaluate_names_standard_input_as_such_in_its_errors_and_warnings(
    model_dir: Path,
) -> None:
    # They named it '-': "-: unknown labels ['OOD']", "- has a header but no rows".
    args = ["evaluate", "--model", str(model_dir), "--data", "-", "--format", "csv"]
    code, _, err = run(*args, stdin="a,label,b\nJeans,valid,1\n")
    assert (code, err.splitlines()[-1]) == (
        1,
        "Error: standard input needs a value and a label column; it has: a, label, b "
        "(choose the values' column with --column)",
    )
    code, _, err = run(*args, stdin="value,label\nJeans,valid\nToaster,OOD\n")
    assert (code, err.splitlines()[-1]) == (
        1,
        "Error: standard input: unknown labels ['OOD']; labels must be one of: valid, "
        "out_of_domain, malformed (or missing)",
    )


def test_evaluate_reads_a_blank_or_nan_label_as_none_and_names_a_few_unknown_ones(
    model_dir: Path, tmp_path: Path
) -> None:
    # A blank label was "unknown labels ['  ']", a NaN one in a Parquet column of numbers
    # "unknown labels ['1.0', 'nan']" (JSONL's NaN was already no label), and a column of
    # 500 categories read as labels named all 500 in one line.
    blank = tmp_path / "blank.csv"
    blank.write_text("value,label\nJeans,valid\nSocks,  \nToaster,\n", "utf-8")
    numbers = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"value": ["Jeans", "Toaster"], "label": [1.0, float("nan")]}), numbers)
    many = write(
        tmp_path / "many.csv",
        pa.table({"value": [f"v{i}" for i in range(500)], "label": [f"c{i}" for i in range(500)]}),
    )
    told = {
        blank: f"{blank}: 2 rows have no label, row 2 first",
        numbers: f"{numbers}: row 2 has no label",
        many: f"{many}: unknown labels {[f'c{i}' for i in range(10)]} and 490 more; labels must "
        "be one of: valid, out_of_domain, malformed (or missing)",
    }
    for data, message in told.items():
        code, _, err = run("evaluate", "--model", str(model_dir), "--data", str(data))
        assert (code, err.splitlines()) == (1, [f"Error: {message}"])
