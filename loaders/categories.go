package loaders

// Category lists in the reference order of each dataset's generator
// (docs/data.md#loaders-categories).
var (
	mvtecCategories = []string{
		"bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
		"pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
	}
	visaCategories = []string{
		"candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2",
		"pcb1", "pcb2", "pcb3", "pcb4", "pipe_fryum",
	}
	mpddCategories = []string{
		"bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes",
	}
	// MAD-Sim folders keep their numeric prefix and the release's spelling
	// (13Pheonix).
	madSimCategories = []string{
		"01Gorilla", "02Unicorn", "03Mallard", "04Turtle", "05Whale", "06Bird", "07Owl",
		"08Sabertooth", "09Swan", "10Sheep", "11Pig", "12Zalika", "13Pheonix", "14Elephant",
		"15Parrot", "16Cat", "17Scorpion", "18Obesobeso", "19Bear", "20Puppy",
	}
	madRealCategories = []string{
		"Bear", "Bird", "Elephant", "Parrot", "Pig", "Puppy", "Scorpion", "Turtle", "Unicorn", "Whale",
	}
	// Real-IAD's 30 objects (the old anomalib list with capacitor, diode, …
	// is wrong).
	realIADCategories = []string{
		"audiojack", "bottle_cap", "button_battery", "end_cap", "eraser", "fire_hood", "mint",
		"mounts", "pcb", "phone_battery", "plastic_nut", "plastic_plug", "porcelain_doll",
		"regulator", "rolled_strip_base", "sim_card_set", "switch", "tape", "terminalblock",
		"toothbrush", "toy", "toy_brick", "transistor1", "u_block", "usb", "usb_adaptor",
		"vcpill", "wooden_beads", "woodstick", "zipper",
	}
	// realIADCodes are the anomaly_class values of the Real-IAD JSONs; OK is
	// normal.
	realIADCodes = map[string]string{
		"OK": "normal", "AK": "pit", "BX": "deformation", "CH": "abrasion", "HS": "scratch",
		"PS": "damage", "QS": "missing parts", "YW": "foreign objects", "ZW": "contamination",
	}
)

// RealIADDefectName is the word for a Real-IAD defect code (AK → pit).
func RealIADDefectName(code string) (string, bool) {
	n, ok := realIADCodes[code]
	return n, ok && code != "OK"
}
