"""Benchmark readers on the registry: each says its space and its file; a table of another space is refused."""
import pytest

from mobile_mote.benchmarks import BENCHMARKS, benchmark_reader, load_benchmark, packaged_benchmark
from mobile_mote.errors import InputError


def test_every_reader_says_its_space_and_file():
    spaces = {cls.space: cls for cls in BENCHMARKS.entries().values()}
    assert set(spaces) == {"nb201", "macro"}
    assert spaces["macro"].suffix == ".json" and spaces["nb201"].suffix == ".csv"
    assert packaged_benchmark("macro").name == "nas-bench-macro_cifar10.json" and packaged_benchmark("nb201") is None


def test_the_reader_of_each_space(nb201_benchmark_csv):
    from mobile_mote.benchmarks.macro import MacroBenchmark
    from mobile_mote.benchmarks.nb201 import MAIN_DATASET, NB201Benchmark
    assert benchmark_reader("macro") is MacroBenchmark and benchmark_reader("nb201") is NB201Benchmark
    assert isinstance(load_benchmark(packaged_benchmark("macro"), "macro"), MacroBenchmark)
    bench = load_benchmark(nb201_benchmark_csv, "nb201")
    assert isinstance(bench, NB201Benchmark) and bench.space == "nb201" and bench.dataset == MAIN_DATASET
    assert load_benchmark(nb201_benchmark_csv, "nb201", "cifar10").dataset == "cifar10"


def test_a_table_of_another_space_is_refused(tmp_path, nb201_benchmark_csv):
    with pytest.raises(InputError) as e:
        load_benchmark(packaged_benchmark("macro"), "nb201")
    line = str(e.value)
    assert "\n" not in line and "is the macro table" in line and "--space nb201 accepts NB201's benchmark.csv" in line
    with pytest.raises(InputError, match="is the nb201 table, which needs --space nb201"):
        load_benchmark(nb201_benchmark_csv, "macro")
    with pytest.raises(InputError, match="space 'mbv2' has no benchmark table; accepted: .*--space macro"):
        load_benchmark(nb201_benchmark_csv, "mbv2")
    with pytest.raises(InputError, match="does not exist; accepted: .*--space nb201"):
        load_benchmark(tmp_path / "none.json", "macro")
