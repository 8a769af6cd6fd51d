package iscsi

import (
	"fmt"
	"testing"

	"github.com/goiser/goiser/iscsi/pdu"
	"github.com/goiser/goiser/iscsi/text"
)

// FuzzLogin feeds a sequence of Login Requests, built from arbitrary
// flags and text, to the login state machine: it must answer or fail
// with a login status, never panic.
func FuzzLogin(f *testing.F) {
	f.Add(byte(0x81), []byte("InitiatorName=iqn.a:b\x00TargetName="+tName+"\x00AuthMethod=None\x00"),
		byte(0x87), []byte("MaxBurstLength=512\x00HeaderDigest=CRC32C\x00"), false)
	f.Add(byte(0x81), []byte("InitiatorName=iqn.a:b\x00TargetName="+tName+"\x00AuthMethod=CHAP\x00"),
		byte(0x01), []byte("CHAP_A=5\x00"), true)
	f.Add(byte(0x40), []byte("InitiatorName=iqn.a"), byte(0x83), []byte(":b\x00SessionType=Discovery\x00"), false)
	// Continued past the 64 KiB text bound; too many unknown keys.
	f.Add(byte(0x40), make([]byte, 40<<10), byte(0x40), make([]byte, 30<<10), false)
	var unknown []byte
	for i := range text.MaxUnknownKeys + 1 {
		unknown = append(unknown, fmt.Sprintf("X-k%d=1\x00", i)...)
	}
	f.Add(byte(0x81), []byte("InitiatorName=iqn.a:b\x00TargetName="+tName+"\x00AuthMethod=None\x00"), byte(0x87), unknown, false)
	// A response continued over several PDUs (the initiator receives 512).
	f.Add(byte(0x81), []byte("InitiatorName=iqn.a:b\x00TargetName="+tName+"\x00AuthMethod=None\x00"), byte(0x87),
		append([]byte("MaxRecvDataSegmentLength=512\x00"), unknown[:len(unknown)/2]...), false)
	f.Fuzz(func(t *testing.T, fl1 byte, d1 []byte, fl2 byte, d2 []byte, chap bool) {
		var c *CHAP
		if chap {
			c = &CHAP{User: "u", Secret: "0123456789abcdef", MutualUser: "t", MutualSecret: "fedcba9876543210"}
		}
		ls := newLogin(testServer(t, c))
		for _, st := range []struct {
			fl byte
			d  []byte
		}{{fl1, d1}, {fl2, d2}} {
			h := make([]byte, pdu.BHSLen)
			h[0] = 0x43
			h[1] = st.fl &^ 0x30
			var req pdu.LoginRequest
			if err := req.UnmarshalBinary(h); err != nil {
				return
			}
			req.Data = st.d
			var rsp pdu.LoginResponse
			if err := ls.handle(&req, &rsp); err != nil {
				return
			}
			// Fetch a continued response as an initiator would: every
			// piece fits the login's 8192 bytes, and C excludes T.
			for i := 0; ; i++ {
				if len(rsp.Data) > loginMaxDSL || rsp.Continue && rsp.Transit {
					t.Fatalf("Login Response of %d bytes, C=%v T=%v", len(rsp.Data), rsp.Continue, rsp.Transit)
				}
				if !rsp.Continue {
					break
				}
				if i > 64 {
					t.Fatal("Login Response continued for more than 64 PDUs")
				}
				fetch := pdu.LoginRequest{CSG: req.CSG}
				if err := ls.handle(&fetch, &rsp); err != nil {
					t.Fatalf("fetching a continued response: %v", err)
				}
			}
			if ls.done {
				_ = ls.params()
				return
			}
		}
	})
}
