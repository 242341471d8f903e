package workflows

import enumspb "go.temporal.io/api/enums/v1"

// Search attributes Farewell sets on its workflows, so that shutdowns can be listed and
// filtered in the Temporal UI and with visibility queries.
const (
	SearchAttrNode    = "FarewellNode"
	SearchAttrOutcome = "FarewellOutcome"
	SearchAttrStep    = "FarewellStep"
)

// SearchAttributes are the custom search attributes a namespace must have for Farewell.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		SearchAttrNode:    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrOutcome: enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchAttrStep:    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}
