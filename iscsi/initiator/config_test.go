package initiator

import (
	"testing"

	"github.com/goiser/goiser/iscsi/pdu"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{InitiatorName: "iqn.2026-11.org.goiser:i", TargetName: "iqn.2026-11.org.goiser:t"}.withDefaults(false)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxRecvDataSegmentLength != DefaultMaxRecvDataSegmentLength || c.FirstBurstLength != DefaultFirstBurstLength ||
		c.MaxBurstLength != DefaultMaxBurstLength || c.MaxOutstandingR2T != 1 || c.MaxTasks != DefaultMaxTasks ||
		c.LoginTimeout != DefaultLoginTimeout || c.Logger == nil {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if c.ISID == (pdu.ISID{}) || c.ISID[0]>>6 != 2 {
		t.Fatalf("ISID %v is not a random (type 2) ISID", c.ISID)
	}
	for _, bad := range []Config{
		{TargetName: "iqn.2026-11.org.goiser:t"},
		{InitiatorName: "iqn.2026-11.org.goiser:i"},
		{InitiatorName: "i", TargetName: "t", MaxRecvDataSegmentLength: 100},
		{InitiatorName: "i", TargetName: "t", MaxBurstLength: 1 << 24},
		{InitiatorName: "i", TargetName: "t", MaxTasks: 70000},
		{InitiatorName: "i", TargetName: "t", CHAP: &CHAP{User: "u"}},
	} {
		if _, err := bad.withDefaults(false); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
	if _, err := (Config{InitiatorName: "i"}).withDefaults(true); err != nil {
		t.Errorf("discovery without TargetName: %v", err)
	}
}

func TestParseRepeated(t *testing.T) {
	got, err := parseRepeated([]byte("TargetName=a\x00TargetAddress=1.2.3.4:3260,1\x00TargetName=b\x00\x00\x00"))
	if err != nil || len(got) != 3 || got[2] != (kv{"TargetName", "b"}) {
		t.Fatalf("parse = %v, %v", got, err)
	}
	for _, bad := range []string{"novalue\x00", "=x\x00", "TargetName=a"} {
		if _, err := parseRepeated([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
