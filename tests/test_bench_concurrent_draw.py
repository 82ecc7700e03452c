"""bench/concurrent_draw.py: threads drawing at once on one shared model each get the answer they get alone.

Against the code before the fix (forward hooks on the shared modules) 8 threads gave wrong feature maps
and failed ("Can't call numpy() on Tensor that requires grad", ...): 400 calls (8 threads x 50, the tiny model)
failed it in each of 30 runs; 10 calls per thread let it pass now and then."""

from tests.conftest import save_tiny


def test_threads_sharing_one_model_match_the_single_thread_answers(tmp_path, capsys, load_bench):
    ckpt = save_tiny(tmp_path / "tiny-mnist.safetensors")
    argv = ["--checkpoint", str(ckpt), "--synthetic", "--threads", "1", "8", "--calls", "50"]
    code = load_bench("concurrent_draw").main(argv)
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["threads", "calls"])
    assert lines[header].split()[-2:] == ["wrong", "failed"]
    rows = [line.split() for line in lines[header + 2 : header + 4]]
    assert [(r[0], r[1]) for r in rows] == [("1", "50"), ("8", "400")], out
    assert [(r[-2], r[-1]) for r in rows] == [("0", "0"), ("0", "0")], out  # wrong, failed
    assert code == 0, out
