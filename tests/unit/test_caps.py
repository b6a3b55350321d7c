"""secctx.core.caps against values `capsh --decode` prints."""
import pytest

from secctx.core import caps

DEFAULT_14 = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
              "SETPCAP", "NET_BIND_SERVICE", "NET_RAW", "SYS_CHROOT", "MKNOD", "AUDIT_WRITE",
              "SETFCAP"]


def test_table_has_41_capabilities_at_kernel_bit_numbers():
    assert len(caps.CAPABILITIES) == 41
    assert caps.CAPABILITIES[0] == "CHOWN"
    assert caps.CAPABILITIES.index("NET_BIND_SERVICE") == 10
    assert caps.CAPABILITIES.index("NET_ADMIN") == 12
    assert caps.CAPABILITIES.index("NET_RAW") == 13
    assert caps.CAPABILITIES.index("SYS_ADMIN") == 21
    assert caps.CAPABILITIES.index("SYS_RESOURCE") == 24
    assert caps.CAPABILITIES.index("SETFCAP") == 31
    assert caps.CAPABILITIES[-1] == "CHECKPOINT_RESTORE"
    assert len(set(caps.CAPABILITIES)) == 41
    assert caps.ALL_CAPS == 0x000001FFFFFFFFFF


@pytest.mark.parametrize("mask", [0x00000000A80425FB, "00000000a80425fb", "0xa80425fb", " a80425fb\n"])
def test_decode_runtime_default(mask):
    assert caps.decode(mask) == DEFAULT_14


def test_runtime_default_is_the_documented_list():
    assert caps.RUNTIME_DEFAULT == 0x00000000A80425FB
    assert caps.encode(caps.RUNTIME_DEFAULT_NAMES) == caps.RUNTIME_DEFAULT
    assert sorted(caps.decode(caps.RUNTIME_DEFAULT)) == sorted(caps.RUNTIME_DEFAULT_NAMES)


def test_decode_full_set():
    assert caps.decode("000001ffffffffff") == list(caps.CAPABILITIES)


def test_decode_single_bit():
    assert caps.decode("0000000000000400") == ["NET_BIND_SERVICE"]


def test_decode_host_without_sys_resource():
    names = caps.decode(0x000001FFFEFFFFFF)
    assert "SYS_RESOURCE" not in names
    assert len(names) == 40


def test_decode_empty():
    assert caps.decode(0) == []
    assert caps.decode("0000000000000000") == []


def test_decode_keeps_unknown_high_bits_as_placeholders():
    assert caps.decode((1 << 41) | (1 << 63) | 1) == ["CHOWN", "CAP_41", "CAP_63"]


@pytest.mark.parametrize("bad", ["xyz", "", "-1"])
def test_decode_rejects_non_hex(bad):
    with pytest.raises(ValueError):
        caps.decode(bad)


def test_decode_rejects_negative_and_non_masks():
    with pytest.raises(ValueError):
        caps.decode(-1)
    with pytest.raises(TypeError):
        caps.decode(True)
    with pytest.raises(TypeError):
        caps.decode(1.0)


@pytest.mark.parametrize("name", ["NET_RAW", "CAP_NET_RAW", "net_raw", "cap_net_raw", " Net_Raw "])
def test_encode_accepts_every_spelling(name):
    assert caps.encode([name]) == 1 << 13


def test_encode_several_and_duplicates():
    assert caps.encode(["NET_RAW", "NET_ADMIN", "net_raw"]) == 0x3000
    assert caps.encode([]) == 0


@pytest.mark.parametrize("name", ["ALL", "all", "NET_RAWW", "CAP_", "13", "CAP_13", ""])
def test_encode_rejects_unknown_names(name):
    with pytest.raises(ValueError, match="unknown capability"):
        caps.encode(["CHOWN", name])


def test_encode_error_names_the_capability():
    with pytest.raises(ValueError, match="'NET_RAWW'"):
        caps.encode(["NET_RAWW"])


def test_encode_rejects_a_single_string():
    with pytest.raises(TypeError):
        caps.encode("NET_RAW")


@pytest.mark.parametrize("mask", [0, 0x400, caps.RUNTIME_DEFAULT, caps.ALL_CAPS, (1 << 45) | 0x3000])
def test_encode_decode_round_trip(mask):
    assert caps.encode(caps.decode(mask)) == mask


def test_to_hex_matches_proc_status():
    assert caps.to_hex(caps.RUNTIME_DEFAULT) == "00000000a80425fb"
    assert caps.to_hex(0) == "0000000000000000"
    assert caps.to_hex("3000") == "0000000000003000"
    assert caps.to_hex(caps.ALL_CAPS) == "000001ffffffffff"


def test_table_lists_each_set():
    text = caps.table({"CapEff": 0, "CapBnd": 0x400, "CapPrm": 0x3000})
    lines = text.splitlines()
    assert lines[0].split() == ["SET", "HEX", "CAPABILITIES"]
    assert lines[1].split() == ["CapEff", "0000000000000000", "(none)"]
    assert lines[2].split() == ["CapBnd", "0000000000000400", "NET_BIND_SERVICE"]
    assert lines[3].split() == ["CapPrm", "0000000000003000", "NET_ADMIN,NET_RAW"]
    # Columns line up so the attachment reads as a table.
    assert len({line.index("0000") for line in lines[1:]}) == 1
