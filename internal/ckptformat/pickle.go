package ckptformat

// Pickle opcodes of protocol 2, as Python's pickletools names them.
const (
	OpProto      = 0x80
	OpStop       = '.'
	OpNone       = 'N'
	OpNewTrue    = 0x88
	OpNewFalse   = 0x89
	OpBinInt1    = 'K'
	OpBinInt2    = 'M'
	OpBinInt     = 'J'
	OpLong1      = 0x8a
	OpBinFloat   = 'G'
	OpBinUnicode = 'X'
	OpEmptyDict  = '}'
	OpEmptyList  = ']'
	OpMark       = '('
	OpSetItems   = 'u'
	OpAppends    = 'e'
)
