"""cnn_core/access.py: the one rule of who sees a run and who acts on it."""

import pytest

from cnn_core.access import Access, Visitor, is_key, new_key, owner_tag, server_access, share_secret
from tests.conftest import tampered

ALICE, BOB = Visitor(new_key()), Visitor(new_key())
ALICES_RUN = {"status": "running", "owner": owner_tag(ALICE.key)}


def test_keys_are_long_random_secrets_and_runs_keep_only_their_hash():
    assert len(ALICE.key) >= 43 and ALICE.key != BOB.key  # 256 bits, URL-safe base64
    assert ALICE.tag == owner_tag(ALICE.key) != ALICE.key and len(ALICE.tag) == 64


def test_local_mode_allows_everything_and_asks_nothing():
    rule = Access("local")
    for visitor in (Visitor(), BOB):
        assert rule.lists(visitor, ALICES_RUN) and rule.can_read(visitor, "r", ALICES_RUN)
        assert rule.can_act(visitor, ALICES_RUN)


def test_hosted_visitors_see_and_act_on_their_own_runs_only():
    rule = Access("hosted", b"secret")
    assert rule.lists(ALICE, ALICES_RUN) and rule.can_act(ALICE, ALICES_RUN)
    for stranger in (BOB, Visitor(), Visitor(key="")):
        assert not rule.lists(stranger, ALICES_RUN) and not rule.can_read(stranger, "r", ALICES_RUN)
        assert not rule.can_act(stranger, ALICES_RUN)
    assert not rule.lists(BOB, {"status": "running", "owner": None})  # an ownerless run is nobody's
    assert not rule.lists(Visitor(key=ALICE.tag), ALICES_RUN)  # the hash on disk is not a key


def test_a_share_token_lets_one_read_that_run_and_nothing_else():
    rule = Access("hosted", b"secret")
    token = rule.share_token("run-a")
    viewer = Visitor(BOB.key, share=token)
    assert rule.can_read(viewer, "run-a", ALICES_RUN)
    assert not rule.can_act(viewer, ALICES_RUN) and not rule.lists(viewer, ALICES_RUN)
    assert not rule.can_read(viewer, "run-b", ALICES_RUN)  # another run of hers
    assert not rule.can_read(Visitor(BOB.key, share=tampered(token)), "run-a", ALICES_RUN)
    assert Access("hosted", b"other secret").share_token("run-a") != token


def test_the_teacher_of_a_class_sees_and_acts_on_every_run():
    rule = Access("class", b"secret")
    teacher = Visitor(new_key(), teacher=True)
    assert rule.lists(teacher, ALICES_RUN) and rule.can_act(teacher, ALICES_RUN)
    assert not rule.lists(BOB, ALICES_RUN) and not rule.can_act(BOB, ALICES_RUN)


def test_modes_come_from_the_environment_and_the_secret_is_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("CNN_HOSTED", raising=False)
    assert server_access(tmp_path).mode == "local"
    monkeypatch.setenv("CNN_HOSTED", "1")
    hosted = server_access(tmp_path)
    assert hosted.mode == "hosted" and hosted.secret == share_secret(tmp_path)  # made once, read again
    assert (tmp_path / ".share-secret").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("CNN_PRIVATE_RUNS", "0")
    assert server_access(tmp_path).mode == "local"
    with pytest.raises(ValueError, match="mode"):
        Access("public")


def test_only_an_owner_steers_a_run_and_pause_is_for_where_it_blocks_nobody():
    teacher = Visitor(new_key(), teacher=True)
    viewer = Visitor(BOB.key, share=Access("class", b"s").share_token("r"))
    local, hosted, school = Access("local"), Access("hosted", b"s"), Access("class", b"s")
    assert local.can_act(Visitor(), ALICES_RUN) and local.can_pause(Visitor(), ALICES_RUN)  # one person's machine
    assert hosted.can_act(ALICE, ALICES_RUN) and not hosted.can_pause(ALICE, ALICES_RUN)  # a slot others wait for
    assert school.can_act(ALICE, ALICES_RUN) and not school.can_pause(ALICE, ALICES_RUN)  # a student: lr, momentum
    assert school.can_act(teacher, ALICES_RUN) and school.can_pause(teacher, ALICES_RUN)  # the teacher: everything
    for stranger in (BOB, viewer):  # another student, a share link's viewer: nothing
        assert not school.can_act(stranger, ALICES_RUN) and not school.can_pause(stranger, ALICES_RUN)
        assert not hosted.can_act(stranger, ALICES_RUN) and not hosted.can_pause(stranger, ALICES_RUN)


def test_a_key_is_long_url_safe_text_or_nothing():
    assert is_key(new_key()) and is_key("a" * 32) and is_key("A-_9" * 64)
    for bad in (None, 42, "", "a" * 31, "a" * 257, "a/" * 20, "ä" * 40, "a b" * 20):
        assert not is_key(bad)
