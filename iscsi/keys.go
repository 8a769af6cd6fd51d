package iscsi

import (
	"bytes"
	"strconv"
	"strings"
)

// kv is one key=value pair of a text data segment (RFC 7143 §6.1).
type kv struct{ key, value string }

// parseKeys splits a text data segment into key=value pairs. Keys without
// '=' are returned with ok=false (a protocol error for the caller).
func parseKeys(data []byte) (pairs []kv, ok bool) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, 0)
		var item []byte
		if i < 0 {
			item, data = data, nil
		} else {
			item, data = data[:i], data[i+1:]
		}
		if len(item) == 0 {
			continue // padding or an empty item
		}
		eq := bytes.IndexByte(item, '=')
		if eq <= 0 {
			return pairs, false
		}
		pairs = append(pairs, kv{string(item[:eq]), string(item[eq+1:])})
	}
	return pairs, true
}

// appendKey appends "key=value\0".
func appendKey(b []byte, key, value string) []byte {
	b = append(b, key...)
	b = append(b, '=')
	b = append(b, value...)
	return append(b, 0)
}

// Special answers (RFC 7143 §6.2).
const (
	valNotUnderstood = "NotUnderstood"
	valIrrelevant    = "Irrelevant"
	valReject        = "Reject"
)

// yesNo formats a boolean key value.
func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// parseBool parses Yes/No.
func parseBool(v string) (b, ok bool) {
	switch v {
	case "Yes":
		return true, true
	case "No":
		return false, true
	}
	return false, false
}

// parseNum parses a decimal or 0x-hex numerical value (RFC 7143 §6.1).
func parseNum(v string) (uint64, bool) {
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 0, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// sessionParams are the negotiated operational values (RFC 7143 §13),
// starting from the RFC defaults.
type sessionParams struct {
	headerDigest, dataDigest bool
	maxConnections           uint32
	initialR2T               bool
	immediateData            bool
	initiatorMRDSL           uint32 // what the initiator can receive
	targetMRDSL              uint32 // what we can receive (declared)
	maxBurst, firstBurst     uint32
	time2Wait, time2Retain   uint32
	maxOutstandingR2T        uint32
	erl                      uint32
	initiatorAlias           string
	mrdslDeclared            bool // we sent our MaxRecvDataSegmentLength
}

func defaultSessionParams(n Negotiation) sessionParams {
	return sessionParams{
		maxConnections:    1,
		initialR2T:        true,
		immediateData:     true,
		initiatorMRDSL:    8192,
		targetMRDSL:       n.MaxRecvDataSegmentLength,
		maxBurst:          262144,
		firstBurst:        65536,
		time2Wait:         2,
		time2Retain:       20,
		maxOutstandingR2T: 1,
	}
}

// negotiate answers one operational key offered by the initiator
// (RFC 7143 §6.2, §13) and records the result. It returns the answer
// value, and handled=false when key is not an operational key.
func (p *sessionParams) negotiate(n Negotiation, key, value string) (answer string, handled bool) {
	num := func(lo, hi uint64) (uint32, bool) {
		v, ok := parseNum(value)
		if !ok || v < lo || v > hi {
			return 0, false
		}
		return uint32(v), true
	}
	boolean := func() (bool, bool) { return parseBool(value) }
	switch key {
	case "HeaderDigest", "DataDigest":
		choice := ""
		for _, v := range strings.Split(value, ",") {
			if v == "None" || (v == "CRC32C" && !n.NoDigests) {
				choice = v
				break
			}
		}
		if choice == "" {
			return valReject, true
		}
		if key == "HeaderDigest" {
			p.headerDigest = choice == "CRC32C"
		} else {
			p.dataDigest = choice == "CRC32C"
		}
		return choice, true
	case "MaxConnections":
		if _, ok := num(1, 65535); !ok {
			return valReject, true
		}
		p.maxConnections = 1
		return "1", true
	case "InitialR2T": // OR
		v, ok := boolean()
		if !ok {
			return valReject, true
		}
		p.initialR2T = v || n.InitialR2T
		return yesNo(p.initialR2T), true
	case "ImmediateData": // AND
		v, ok := boolean()
		if !ok {
			return valReject, true
		}
		p.immediateData = v && !n.NoImmediateData
		return yesNo(p.immediateData), true
	case "MaxRecvDataSegmentLength": // declarative
		v, ok := num(512, 16777215)
		if !ok {
			return valReject, true
		}
		p.initiatorMRDSL = v
		p.mrdslDeclared = true
		return strconv.FormatUint(uint64(p.targetMRDSL), 10), true
	case "MaxBurstLength": // min
		v, ok := num(512, 16777215)
		if !ok {
			return valReject, true
		}
		p.maxBurst = min(v, n.MaxBurstLength)
		p.firstBurst = min(p.firstBurst, p.maxBurst)
		return strconv.FormatUint(uint64(p.maxBurst), 10), true
	case "FirstBurstLength": // min
		v, ok := num(512, 16777215)
		if !ok {
			return valReject, true
		}
		p.firstBurst = min(v, n.FirstBurstLength, p.maxBurst)
		return strconv.FormatUint(uint64(p.firstBurst), 10), true
	case "DefaultTime2Wait": // max
		v, ok := num(0, 3600)
		if !ok {
			return valReject, true
		}
		p.time2Wait = max(v, n.DefaultTime2Wait)
		return strconv.FormatUint(uint64(p.time2Wait), 10), true
	case "DefaultTime2Retain": // min
		v, ok := num(0, 3600)
		if !ok {
			return valReject, true
		}
		p.time2Retain = min(v, n.DefaultTime2Retain)
		return strconv.FormatUint(uint64(p.time2Retain), 10), true
	case "MaxOutstandingR2T": // min
		v, ok := num(1, 65535)
		if !ok {
			return valReject, true
		}
		p.maxOutstandingR2T = min(v, n.MaxOutstandingR2T)
		return strconv.FormatUint(uint64(p.maxOutstandingR2T), 10), true
	case "DataPDUInOrder", "DataSequenceInOrder": // OR: we only do Yes
		if _, ok := boolean(); !ok {
			return valReject, true
		}
		return "Yes", true
	case "ErrorRecoveryLevel": // min: we only do 0
		if _, ok := num(0, 2); !ok {
			return valReject, true
		}
		p.erl = 0
		return "0", true
	case "IFMarker", "OFMarker": // AND (RFC 3720 keys): No
		if _, ok := boolean(); !ok {
			return valReject, true
		}
		return "No", true
	case "IFMarkInt", "OFMarkInt":
		return valReject, true
	case "RDMAExtensions": // AND; not over TCP
		if _, ok := boolean(); !ok {
			return valReject, true
		}
		return "No", true
	case "iSCSIProtocolLevel": // RFC 7144 §2.1: min
		if _, ok := num(0, 31); !ok {
			return valReject, true
		}
		return "1", true
	case "TaskReporting": // RFC 7144 §2.3
		return "RFC3720", true
	case "InitiatorAlias":
		p.initiatorAlias = value
		return "", true // declarative; no answer
	case "MaxAHSLength", "TaggedBufferForSolicitedDataOnly", "iSERHelloRequired",
		"InitiatorRecvDataSegmentLength", "TargetRecvDataSegmentLength":
		return valIrrelevant, true
	}
	return "", false
}

// params converts the negotiated values for the transport.
func (p *sessionParams) params(discovery bool) Params {
	first := p.firstBurst
	if !p.initialR2T || p.immediateData {
		first = min(p.firstBurst, p.maxBurst)
	}
	return Params{
		HeaderDigest:        p.headerDigest,
		DataDigest:          p.dataDigest,
		TargetMaxRecvDSL:    p.targetMRDSL,
		InitiatorMaxRecvDSL: p.initiatorMRDSL,
		MaxBurstLength:      p.maxBurst,
		FirstBurstLength:    first,
		MaxOutstandingR2T:   p.maxOutstandingR2T,
		ImmediateData:       p.immediateData,
		InitialR2T:          p.initialR2T,
		Discovery:           discovery,
	}
}
