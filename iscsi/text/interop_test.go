package text

import (
	"slices"
	"testing"

	"github.com/goiser/goiser/iscsi/pdu"
)

// openISCSIOpKeys are the keys open-iscsi's login parser accepts in the
// operational stage (usr/login.c get_op_params_text_keys); any other key in
// a response makes it fail the login with "couldn't recognize text".
var openISCSIOpKeys = []string{
	"TargetAlias", "TargetAddress", "TargetPortalGroupTag", "InitialR2T", "ImmediateData",
	"MaxRecvDataSegmentLength", "FirstBurstLength", "MaxBurstLength", "HeaderDigest", "DataDigest",
	"DefaultTime2Wait", "DefaultTime2Retain", "OFMarker", "OFMarkInt", "IFMarker", "IFMarkInt",
	"DataPDUInOrder", "DataSequenceInOrder", "MaxOutstandingR2T", "MaxConnections", "ErrorRecoveryLevel",
	"RDMAExtensions", "InitiatorRecvDataSegmentLength", "TargetRecvDataSegmentLength",
}

// TestOpenISCSIShapedLogin feeds a target the operational offer open-iscsi
// sends (TCP and iSER) and checks that every key we answer or declare is
// one open-iscsi understands, with the values it requires.
func TestOpenISCSIShapedLogin(t *testing.T) {
	tcp := []string{"HeaderDigest=None", "DataDigest=None", "DefaultTime2Wait=2", "DefaultTime2Retain=0",
		"IFMarker=No", "OFMarker=No", "ErrorRecoveryLevel=0", "InitialR2T=No", "ImmediateData=Yes",
		"MaxBurstLength=16776192", "FirstBurstLength=262144", "MaxOutstandingR2T=1", "MaxConnections=1",
		"DataPDUInOrder=Yes", "DataSequenceInOrder=Yes", "MaxRecvDataSegmentLength=262144"}
	iser := []string{"HeaderDigest=None", "DataDigest=None", "DefaultTime2Wait=2", "DefaultTime2Retain=0",
		"IFMarker=No", "OFMarker=No", "ErrorRecoveryLevel=0", "InitialR2T=No", "ImmediateData=Yes",
		"MaxBurstLength=16776192", "FirstBurstLength=262144", "MaxOutstandingR2T=1", "MaxConnections=1",
		"DataPDUInOrder=Yes", "DataSequenceInOrder=Yes", "RDMAExtensions=Yes",
		"InitiatorRecvDataSegmentLength=262144", "TargetRecvDataSegmentLength=8192"}
	for _, tc := range []struct {
		name string
		iser bool
		keys []string
	}{{"tcp", false, tcp}, {"iser", true, iser}} {
		local := DefaultParams()
		local.InitialR2T = false
		local.MaxRecvDataSegmentLength = 65536
		local.TargetPortalGroupTag = 1
		local.TargetAlias = "disk"
		n, err := NewNegotiator(Config{Local: local, ISER: tc.iser})
		if err != nil {
			t.Fatal(err)
		}
		var out Pairs
		if err := n.Receive(sec, pairs("InitiatorName=iqn.2004-10.com.ubuntu:01:abc", "SessionType=Normal",
			"TargetName=iqn.t", "AuthMethod=None"), &out); err != nil {
			t.Fatal(err)
		}
		n.Offer(sec, &out)
		for _, kv := range out.All() {
			if !slices.Contains([]string{"TargetAlias", "TargetAddress", "TargetPortalGroupTag", "AuthMethod"}, kv.Key) {
				t.Errorf("%s: security stage answer %s would fail open-iscsi", tc.name, kv.Key)
			}
		}
		out.Reset()
		if err := n.Receive(op, pairs(tc.keys...), &out); err != nil {
			t.Fatal(err)
		}
		n.Offer(op, &out)
		for _, kv := range out.All() {
			if !slices.Contains(openISCSIOpKeys, kv.Key) {
				t.Errorf("%s: answer %s=%s is not a key open-iscsi recognizes", tc.name, kv.Key, kv.Value)
			}
			if kv.Value == Reject || kv.Value == NotUnderstood {
				t.Errorf("%s: %s=%s", tc.name, kv.Key, kv.Value)
			}
		}
		for key, want := range map[string]string{"ErrorRecoveryLevel": "0", "HeaderDigest": "None", "DataDigest": "None"} {
			if v, _ := out.Get(key); v != want {
				t.Errorf("%s: %s=%s, open-iscsi requires %s", tc.name, key, v, want)
			}
		}
		if v, _ := out.Get(KeyRDMAExtensions); tc.iser && v != Yes {
			t.Errorf("iser: RDMAExtensions=%s", v)
		}
		if err := n.CheckLogin(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		p := n.Params()
		if p.InitialR2T || !p.ImmediateData || p.MaxBurstLength != 262144 || p.FirstBurstLength != 65536 {
			t.Errorf("%s: params %+v", tc.name, p)
		}
		if tc.iser && (p.TargetRecvDataSegmentLength != 8192 || p.InitiatorRecvDataSegmentLength != 8192) {
			t.Errorf("iser: RDSLs %d/%d", p.InitiatorRecvDataSegmentLength, p.TargetRecvDataSegmentLength)
		}
		if !tc.iser && p.PeerMaxRecvDataSegmentLength != 262144 {
			t.Errorf("tcp: peer MaxRecvDataSegmentLength %d", p.PeerMaxRecvDataSegmentLength)
		}
	}
}

// FuzzNegotiator feeds arbitrary key=value texts to a target in every
// stage: it must never panic, and whatever it answers must encode.
func FuzzNegotiator(f *testing.F) {
	f.Add([]byte("HeaderDigest=CRC32C,None\x00MaxBurstLength=99999999\x00X-a=b\x00"), uint8(1), false)
	f.Add([]byte("SessionType=Discovery\x00FirstBurstLength=512\x00InitialR2T=Yes\x00ImmediateData=No\x00"), uint8(1), true)
	f.Add([]byte("AuthMethod=CHAP,None\x00CHAP_A=5\x00InitiatorName=iqn.x\x00"), uint8(0), false)
	f.Add([]byte("MaxRecvDataSegmentLength=4096\x00SendTargets=All\x00"), uint8(3), false)
	f.Add(manyKeys(MaxUnknownKeys+1), uint8(1), false) // too many keys to answer NotUnderstood
	f.Fuzz(func(t *testing.T, data []byte, stage uint8, iser bool) {
		var in Pairs
		if Parse(data, &in) != nil {
			return
		}
		for _, role := range []Role{RoleTarget, RoleInitiator} {
			local := DefaultParams()
			local.InitiatorName, local.TargetName = "iqn.i", "iqn.t"
			n, err := NewNegotiator(Config{Role: role, Local: local, ISER: iser, AuthMethods: []string{AuthCHAP, None}})
			if err != nil {
				t.Fatal(err)
			}
			var out Pairs
			st := pdu.Stage(stage & 3)
			if role == RoleInitiator {
				n.Offer(st, &out)
			}
			if err := n.Receive(st, &in, &out); err != nil {
				return
			}
			n.Offer(st, &out)
			if _, err := out.AppendBinary(nil); err != nil {
				t.Fatalf("%v answer does not encode: %v (%v)", role, err, out.String())
			}
			p := n.Params()
			if p.FirstBurstLength > p.MaxBurstLength || p.MaxBurstLength < 512 {
				t.Fatalf("inconsistent params %+v", p)
			}
		}
	})
}
