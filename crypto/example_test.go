package crypto_test

import (
	"fmt"

	qfcrypto "github.com/qingfeng-zj/qingfeng/crypto"
)

func ExampleFormatReceipt() {
	// The code as stored in no database: shown once to the reporter, grouped 4-4-4-4.
	fmt.Println(qfcrypto.FormatReceipt("6201458290371156"))
	// Output: 6201 4582 9037 1156
}

func ExampleNormalizeReceipt() {
	// What a reporter types back, with a Chinese input method's full-width digits and
	// dashes, is accepted; a typo is caught by the check digit before any lookup.
	for _, typed := range []string{"６２０１－４５８２－９０３７－１１５６", "6201 4582 9037 1165"} {
		code, ok := qfcrypto.NormalizeReceipt(typed)
		fmt.Printf("%q %v\n", code, ok)
	}
	// Output:
	// "6201458290371156" true
	// "" false
}
