package ckptformat

// Zip record signatures and fixed sizes of the records a torch.save archive ends with
// (APPNOTE.TXT 4.3.12 to 4.3.16), and the 32-bit field value that says "see ZIP64".
const (
	SigLocal      = 0x04034b50
	SigCentral    = 0x02014b50
	SigEnd        = 0x06054b50
	SigEnd64      = 0x06064b50
	SigLocator64  = 0x07064b50
	EndLen        = 22
	End64Len      = 56
	Locator64Len  = 20
	MaxUint32Mark = 0xffffffff
)
