// Package tcp is the iSCSI/TCP transport (RFC 7143 over a byte stream): it
// implements iscsi.Transport and iscsi.TransportConn.
//
//	t, err := tcp.Listen("127.0.0.1:3260", tcp.Config{Logger: log})
//	...
//	err = srv.Serve(t) // srv is an *iscsi.Server
//
// Per connection, the goroutine calling Recv reads PDUs through a bufio
// reader: it checks header and data digests (CRC32C), enforces the
// target's MaxRecvDataSegmentLength, gives each SCSI Command its data
// buffer from a pool of size classes, places immediate data there, and
// routes Data-Out PDUs by ITT and TTT into the buffer of their task after
// checking DataSN and buffer offset (DataPDUInOrder=Yes). When the last byte
// a task asked for arrives it reports InDataDone; when a solicited sequence
// completes it sends the next R2T itself.
//
// Sends are serialized by a mutex and go out with one writev (net.Buffers):
// PutData sends every Data-In PDU of a response, plus the SCSI Response when
// the status cannot ride in the last Data-In, in a single call, pointing at
// the task's buffer rather than copying it. Nothing on the READ or WRITE
// path allocates in steady state.
package tcp
