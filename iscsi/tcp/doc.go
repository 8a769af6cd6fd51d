// Package tcp is the iSCSI/TCP transport (RFC 7143 over a byte stream): it
// implements iscsi.Transport and iscsi.TransportConn.
//
//	t, err := tcp.Listen("127.0.0.1:3260", tcp.Config{Logger: log})
//	...
//	err = srv.Serve(t) // srv is an *iscsi.Server
//
// The framing (BHS, AHS, CRC32C header and data digests, padding, the
// target's MaxRecvDataSegmentLength) is iscsi/pdu's: a pdu.Reader on the
// receive side, a pdu.Batch on the send side. This package adds what the
// datamover needs on top.
//
// Per connection, the goroutine calling Recv reads PDUs through a bufio
// reader and a pdu.Reader: it reads each header into the Inbound, gives
// each SCSI Command its data buffer from a pool of size classes, places
// immediate data there, and routes Data-Out PDUs by ITT and TTT into the
// buffer of their task after checking DataSN and buffer offset
// (DataPDUInOrder=Yes). When the last byte a task asked for arrives it
// reports InDataDone; when a solicited sequence completes it sends the
// next R2T itself.
//
// Errors of the reader end the connection (ErrorRecoveryLevel 0) after a
// Reject where RFC 7143 calls for one: a data digest error, an oversized
// data segment, an AHS on anything but a SCSI Command. A header digest
// error gets none, since the header cannot be trusted.
//
// Sends are serialized by a mutex and go out with one writev (a pdu.Batch):
// PutData sends every Data-In PDU of a response, plus the SCSI Response when
// the status cannot ride in the last Data-In, in a single call, pointing at
// the task's buffer rather than copying it. Nothing on the READ or WRITE
// path allocates in steady state.
package tcp
