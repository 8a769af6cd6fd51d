package iscsi

// appendKey appends "key=value\0" (RFC 7143 §6.1). SendTargets answers
// repeat keys (TargetName, TargetAddress), which text.Pairs does not allow,
// so they are built with this.
func appendKey(b []byte, key, value string) []byte {
	b = append(b, key...)
	b = append(b, '=')
	b = append(b, value...)
	return append(b, 0)
}
