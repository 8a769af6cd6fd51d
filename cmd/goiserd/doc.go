// Command goiserd is the goiser iSCSI target daemon: it serves SCSI logical
// units (in memory, in files or block devices, or null) to iSCSI initiators
// over TCP (RFC 7143) and, on hosts with RDMA devices, over iSER (RFC 7145)
// at the same time (-iser ADDR[:PORT], "iser_portals" in the config; see
// docs/iser.md).
//
// With no flags it serves the built-in default, a 1 GiB in-memory LUN 0
// under iqn.2026-11.dev.goiser:default on 127.0.0.1:3260, and prints how to
// reach it:
//
//	goiserd
//	iscsi-ls -s iscsi://127.0.0.1:3260
//	iscsi-inq iscsi://127.0.0.1:3260/iqn.2026-11.dev.goiser:default/0
//
// Flags cover one target:
//
//	goiserd -listen 0.0.0.0:3260 -target iqn.2026-11.com.example:disks \
//	    -lun file:/var/lib/goiser/disk0.img,size=10G -lun mem:1G -chap alice:s3cret-pass
//
// A config file (-config FILE, JSON) describes several targets, their LUNs,
// who may log in, CHAP secrets and negotiation overrides. Unknown fields,
// bad sizes and names, duplicate LUNs or targets are errors that name the
// field (targets[0].luns[1].size) and, for JSON errors, the line. This is
// testdata/example.json:
//
//	{
//	  "portals": ["127.0.0.1:3260"],
//	  "log": {"level": "info", "format": "text"},
//	  "shutdown_timeout": "10s",
//	  "negotiation": {"max_burst_length": 1048576, "immediate_data": true,
//	                  "digests": true, "nop_in_interval": "5s"},
//	  "targets": [{
//	    "name": "iqn.2026-11.com.example:disk1",
//	    "alias": "disk one",
//	    "initiators": ["iqn.1994-05.com.redhat:client1"],
//	    "chap": {"user": "alice", "secret": "s3cret-pass",
//	             "mutual_user": "disk1", "mutual_secret": "other-s3cret"},
//	    "luns": [
//	      {"lun": 0, "backend": "file", "path": "/var/lib/goiser/disk1.img", "size": "10G"},
//	      {"lun": 1, "backend": "mem", "size": "1G", "block_size": 4096},
//	      {"lun": 2, "backend": "null", "size": "1T", "read_only": true}
//	    ]
//	  }]
//	}
//
// Sizes are byte counts or numbers with a binary suffix (K, M, G, T; "1G"
// is 2^30 bytes). A file LUN with a size creates a missing file and extends
// a shorter one; without a size the file must exist. "direct": true opens it
// with O_DIRECT. An empty "initiators" list lets every initiator in. Other
// LUN fields: "serial", "physical_block_size", "removable",
// "thin_provisioning" (default true: UNMAP punches holes in files) and
// "write_through" (default false: a write-back cache that initiators flush
// with SYNCHRONIZE CACHE or FUA).
//
// Further top-level sections: "iser_portals" (["10.0.0.1", "10.0.0.2:3261"],
// port 3260 by default) with "iser" tuning (memory, max_io_size,
// recv_data_size, poll_groups), and "limits", the bounds a hostile
// initiator cannot exceed (connections, sessions, task memory, login and
// Data-Out timeouts, text length; docs/security.md).
//
// The daemon's life: parse flags, load and validate the config, open the
// backends and build one scsi.Target per target, listen on every portal,
// then serve with iscsi.Server until SIGTERM or SIGINT. Shutdown is
// graceful: listeners close, commands already received finish and are
// answered, initiators are asked to log out; after shutdown_timeout the
// remaining connections are closed. Then every backend is flushed
// (fdatasync for files) and closed, so nothing acknowledged is lost. A
// second signal exits at once (data already written to a file backend is
// in the kernel's page cache and survives that too); a repeat within 250 ms
// of the first is the same signal delivered twice (coreutils timeout does
// that) and is ignored.
//
// Exit status: 0 after a clean shutdown, 1 on a runtime error (a portal
// that cannot listen, a backing file that cannot be opened), 2 on a usage
// or config error.
package main
