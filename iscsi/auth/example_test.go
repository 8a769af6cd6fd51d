package auth_test

import (
	"fmt"

	"github.com/goiser/goiser/iscsi/auth"
	"github.com/goiser/goiser/iscsi/text"
)

// Example runs mutual CHAP between an Initiator and a Target in memory.
func Example() {
	ini, _ := auth.NewInitiator(auth.InitiatorConfig{
		Credentials: auth.Credentials{User: "iqn.2026-01.example:host", Secret: []byte("initiator-secret")},
		Mutual:      &auth.Credentials{User: "iqn.2026-01.example:disk", Secret: []byte("target-secret-1")},
		Algorithms:  []auth.Algorithm{auth.SHA256, auth.MD5},
	})
	tgt, _ := auth.NewTarget(auth.TargetConfig{
		Secret: func(user string) ([]byte, bool) {
			return []byte("initiator-secret"), user == "iqn.2026-01.example:host"
		},
		Mutual: &auth.Credentials{User: "iqn.2026-01.example:disk", Secret: []byte("target-secret-1")},
	})
	var req, rsp text.Pairs
	ini.Start(&req) // CHAP_A=7,5
	for !(ini.Done() && tgt.Done()) {
		rsp.Reset()
		if _, err := tgt.Step(&req, &rsp); err != nil {
			fmt.Println("target:", err)
			return
		}
		req.Reset()
		if _, err := ini.Step(&rsp, &req); err != nil {
			fmt.Println("initiator:", err)
			return
		}
	}
	fmt.Println("authenticated", tgt.User(), "with", tgt.Algorithm())
	// Output:
	// authenticated iqn.2026-01.example:host with SHA-256
}
