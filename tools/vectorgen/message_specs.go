package main

import (
	"fmt"
	"math"
	"strings"
)

// messageSpecs lists the codec vectors, in the order of messages.json.
func messageSpecs() []vectorSpec {
	long := strings.Repeat("long string ", 25) // 300 bytes: a two-byte length
	seq := make([]string, 200)
	for i := range seq {
		seq[i] = fmt.Sprint(i * 37)
	}
	return []vectorSpec{
		// Scalars.
		{name: "scalars_empty", typ: "Scalars", json: `{}`},
		{name: "scalars_small", typ: "Scalars", json: `{"i32":1,"i64":"2","u32":3,"u64":"4","s32":5,"s64":"6","f32":7,"f64":"8","sf32":9,"sf64":"10","fl":1.5,"db":2.25,"b":true,"s":"a","by":"AQ==","color":"RED","max_field":1}`},
		{name: "scalars_max", typ: "Scalars", json: `{"i32":2147483647,"i64":"9223372036854775807","u32":4294967295,"u64":"18446744073709551615","s32":2147483647,"s64":"9223372036854775807","f32":4294967295,"f64":"18446744073709551615","sf32":2147483647,"sf64":"9223372036854775807","fl":3.4028235e38,"db":1.7976931348623157e308,"max_field":4294967295}`},
		{name: "scalars_min", typ: "Scalars", json: `{"i32":-2147483648,"i64":"-9223372036854775808","s32":-2147483648,"s64":"-9223372036854775808","sf32":-2147483648,"sf64":"-9223372036854775808","fl":-3.4028235e38,"db":-1.7976931348623157e308}`},
		{name: "scalars_minus_one", typ: "Scalars", json: `{"i32":-1,"i64":"-1","s32":-1,"s64":"-1","sf32":-1,"sf64":"-1","fl":-1,"db":-1,"color":"NEGATIVE"}`},
		{name: "scalars_2_pow_53", typ: "Scalars", json: `{"i64":"9007199254740992","u64":"9007199254740993","s64":"-9007199254740993","f64":"9223372036854775808","sf64":"-9007199254740992"}`},
		{name: "scalars_2_pow_53_plus_one", typ: "Scalars", json: `{"i64":"9007199254740993","u64":"9007199254740992","s64":"9007199254740992","f64":"9007199254740993","sf64":"9007199254740993"}`},
		{name: "scalars_2_pow_63", typ: "Scalars", json: `{"i64":"-9223372036854775807","u64":"9223372036854775808","s64":"4611686018427387904","f64":"9223372036854775807","sf64":"-4611686018427387905"}`},
		{name: "scalars_varint_boundaries", typ: "Scalars", json: `{"i32":127,"i64":"128","u32":16383,"u64":"16384","s32":-64,"s64":"64","color":"BLUE","max_field":2097151}`},
		{name: "scalars_32_bit_boundaries", typ: "Scalars", json: `{"i32":-2147483647,"i64":"4294967296","u32":2147483648,"u64":"4294967295","s32":1073741824,"s64":"-4294967296","f32":2147483648,"f64":"4294967296","sf32":-2147483647,"sf64":"-4294967297"}`},
		{name: "scalars_negative_zero", typ: "Scalars", json: `{}`, fix: set(map[string]any{"fl": float32(math.Copysign(0, -1)), "db": math.Copysign(0, -1)})},
		{name: "scalars_nan", typ: "Scalars", json: `{}`, fix: set(map[string]any{"fl": nan32, "db": nan64})},
		{name: "scalars_infinity", typ: "Scalars", json: `{"fl":"Infinity","db":"-Infinity"}`},
		{name: "scalars_negative_infinity", typ: "Scalars", json: `{"fl":"-Infinity","db":"Infinity"}`},
		{name: "scalars_subnormal", typ: "Scalars", json: `{"fl":1e-45,"db":5e-324}`},
		{name: "scalars_largest_subnormal", typ: "Scalars", json: `{"fl":1.1754942e-38,"db":2.225073858507201e-308}`},
		{name: "scalars_smallest_normal", typ: "Scalars", json: `{"fl":1.1754944e-38,"db":2.2250738585072014e-308}`},
		{name: "scalars_fractions", typ: "Scalars", json: `{"fl":0.1,"db":0.1}`},
		{name: "scalars_fractions_2", typ: "Scalars", json: `{"fl":-1234.5677,"db":123456789.123456789}`},
		{name: "scalars_float_rounding", typ: "Scalars", json: `{"fl":16777217,"db":9007199254740993}`},
		{name: "scalars_large_doubles", typ: "Scalars", json: `{"fl":1e30,"db":1e300}`},
		{name: "scalars_utf8", typ: "Scalars", json: `{"s":"héllo, 世界 🌍 \u0000 end"}`},
		{name: "scalars_bytes_not_utf8", typ: "Scalars", json: `{"by":"//4AgMM="}`},
		{name: "scalars_long_string", typ: "Scalars", json: `{"s":"` + long + `","by":"` + strings.Repeat("AAEC", 50) + `"}`},
		{name: "scalars_enum_unknown", typ: "Scalars", json: `{"color":7}`},
		{name: "scalars_enum_unknown_negative", typ: "Scalars", json: `{"color":-2}`},
		{name: "scalars_false_and_empty", typ: "Scalars", json: `{"b":false,"s":"","by":"","color":"COLOR_UNSPECIFIED","i32":0}`},

		// Repeated fields.
		{name: "repeats_empty", typ: "Repeats", json: `{}`},
		{name: "repeats_packed", typ: "Repeats", json: `{"i32":[0,1,-1,2147483647,-2147483648],"i64":["0","-9223372036854775808","9223372036854775807","9007199254740993"],"u32":[0,4294967295,300],"u64":["0","18446744073709551615","9007199254740993"],"s32":[0,-1,1,-2147483648,2147483647],"s64":["0","-1","-9223372036854775808","9223372036854775807"],"f32":[0,4294967295],"f64":["0","18446744073709551615"],"sf32":[-2147483648,2147483647,-1],"sf64":["-9223372036854775808","9223372036854775807","-1"],"fl":[0,1.5,-2.5,"Infinity"],"db":[0,-1.25,"-Infinity",5e-324],"b":[true,false,true],"color":["RED","NEGATIVE",7,"COLOR_UNSPECIFIED","BLUE"]}`},
		{name: "repeats_packed_single_zero", typ: "Repeats", json: `{"i32":[0],"b":[false],"db":[0]}`},
		{name: "repeats_packed_long", typ: "Repeats", json: `{"i32":[` + strings.Join(seq, ",") + `]}`},
		{name: "repeats_nan", typ: "Repeats", json: `{}`, fix: set(map[string]any{"fl": []float32{nan32, 1}, "db": []float64{1, nan64}})},
		{name: "repeats_strings_bytes_messages", typ: "Repeats", json: `{"s":["","a","ü",""],"by":["","AP8=","gA=="],"leaves":[{},{"id":1,"name":"x"},{"id":-1}]}`},
		{name: "repeats_unpacked", typ: "Repeats", json: `{"unpacked_i32":[0,-1,1,2147483647],"unpacked_s64":["0","-1","-9223372036854775808"],"unpacked_f32":[0,4294967295],"unpacked_db":[0,1.5],"unpacked_b":[false,true],"unpacked_color":["COLOR_UNSPECIFIED","NEGATIVE",9]}`, fix: set(map[string]any{"unpacked_db": []float64{nan64}})},
		{name: "repeats_packed_and_unpacked", typ: "Repeats", json: `{"i32":[1,2],"leaves":[{"name":"l"}],"unpacked_i32":[3,4]}`},

		// Maps.
		{name: "maps_empty", typ: "Maps", json: `{}`},
		{name: "maps_every_key_kind", typ: "Maps", json: `{"ss":{"":"","a":"b","ü":"x"},"i32_leaf":{"-1":{"id":1},"0":{},"5":{"name":"five"}},"b_i64":{"false":"-1","true":"9223372036854775807"},"u64_color":{"0":"RED","18446744073709551615":"NEGATIVE","5":7},"s32_bytes":{"-2147483648":"AA==","1":""},"i64_db":{"-9223372036854775808":-0.5,"1":1.5},"u32_u32":{"0":0,"4294967295":4294967295},"s64_b":{"-1":true,"1":false},"f32_fl":{"4294967295":1.5,"0":"-Infinity"},"f64_s":{"18446744073709551615":"max","9007199254740993":"2^53+1"},"sf32_sf64":{"-1":"-1","2147483647":"9223372036854775807"},"sf64_u64":{"-9223372036854775808":"18446744073709551615","0":"0"},"s_outer":{"o":{"middle":{"inner":{"depth":3}}},"":{}}}`},
		{name: "maps_key_order", typ: "Maps", json: `{"ss":{"b":"1","a":"2","ab":"3","B":"4","":"5","é":"6","z":"7"},"i64_db":{"10":1,"9":2,"-5":3,"100":4,"-100":5,"9223372036854775807":6},"u64_color":{"10":"RED","9":"RED","18446744073709551615":"RED","9223372036854775808":"RED","9223372036854775807":"RED"},"s32_bytes":{"-1":"","1":"","-2":"","2":""},"sf64_u64":{"-1":"1","1":"1"}}`},
		{name: "maps_zero_entries", typ: "Maps", json: `{"ss":{"":""},"i32_leaf":{"0":{}},"b_i64":{"false":"0"},"u32_u32":{"0":0}}`},

		// Nested messages.
		{name: "nested_three_deep", typ: "Outer", json: `{"middle":{"inner":{"depth":3,"note":"deep","children":[{"depth":4},{"depth":4,"children":[{"depth":5}]}]},"inners":[{},{"depth":1}],"tag":"-5"},"shortcut":{"depth":2},"name":"outer"}`},
		{name: "nested_empty_messages", typ: "Outer", json: `{"middle":{"inner":{}},"shortcut":{}}`},

		// Oneof.
		{name: "oneof_none", typ: "Choice", json: `{"before":1,"after":"x"}`},
		{name: "oneof_num_zero", typ: "Choice", json: `{"num":0}`},
		{name: "oneof_num", typ: "Choice", json: `{"before":-1,"num":-7,"after":"y"}`},
		{name: "oneof_text_empty", typ: "Choice", json: `{"text":""}`},
		{name: "oneof_text", typ: "Choice", json: `{"text":"chosen"}`},
		{name: "oneof_raw", typ: "Choice", json: `{"raw":"/wA="}`},
		{name: "oneof_color_zero", typ: "Choice", json: `{"color":"COLOR_UNSPECIFIED"}`},
		{name: "oneof_leaf_empty", typ: "Choice", json: `{"leaf":{}}`},
		{name: "oneof_leaf", typ: "Choice", json: `{"before":2,"leaf":{"id":3,"name":"leaf"},"after":"z"}`},
		{name: "oneof_real_negative_zero", typ: "Choice", json: `{}`, fix: set(map[string]any{"real": math.Copysign(0, -1)})},

		// proto3 optional.
		{name: "optionals_none", typ: "Optionals", json: `{}`},
		{name: "optionals_defaults", typ: "Optionals", json: `{"i32":0,"i64":"0","u64":"0","b":false,"s":"","by":"","color":"COLOR_UNSPECIFIED","db":0,"fl":0,"s32":0,"f64":"0"}`},
		{name: "optionals_values", typ: "Optionals", json: `{"i32":-5,"i64":"9223372036854775807","u64":"18446744073709551615","b":true,"s":"set","by":"AQI=","color":"GREEN","db":-2.5,"fl":0.25,"s32":-3,"f64":"1"}`},

		// Unknown fields: kept, and written after the known ones in the order they came.
		{name: "unknown_fields", typ: "Narrow", from: "Wide", json: `{"a":1,"varint":"-2","fixed64":"3","text":"four","fixed32":5,"b":"six","packed":[7,8],"leaf":{"id":9},"c":10,"far":"11"}`},
		{name: "unknown_fields_only", typ: "Narrow", from: "Wide", json: `{"varint":"150","text":"t","far":"18446744073709551615"}`},
		{name: "unknown_fields_nested", typ: "Envelope", from: "WideEnvelope", json: `{"narrow":{"a":1,"text":"x","c":2},"narrows":[{"fixed32":1},{"b":"y","far":"2"}],"after":3}`},
		{name: "unknown_fields_empty_message", typ: "Empty", from: "Scalars", json: `{"i32":1,"s":"x","max_field":1}`},
		{name: "unknown_group", typ: "Narrow", raw: "0801 4802 7b 0801 1a0178 8301 0805 8401 7c"},
		{name: "unknown_wrong_wire_type", typ: "Narrow", raw: "0a 02 6869 4d 01000000"},

		// Invalid encodings: every SDK reports an error.
		{name: "bad_truncated_varint", typ: "Scalars", raw: "08 ff", invalid: true},
		{name: "bad_truncated_tag", typ: "Scalars", raw: "ff", invalid: true},
		{name: "bad_varint_11_bytes", typ: "Scalars", raw: "08 ffffffffffffffffffff01", invalid: true},
		{name: "bad_varint_overflow", typ: "Scalars", raw: "08 ffffffffffffffffff02", invalid: true},
		{name: "bad_tag_varint_overflow", typ: "Scalars", raw: "ffffffffffffffffff02 00", invalid: true},
		{name: "bad_length_past_end", typ: "Scalars", raw: "72 05 6162", invalid: true},
		{name: "bad_length_huge", typ: "Scalars", raw: "72 ffffffff0f 61", invalid: true},
		{name: "bad_truncated_fixed32", typ: "Scalars", raw: "3d 0102", invalid: true},
		{name: "bad_truncated_fixed64", typ: "Scalars", raw: "41 010203", invalid: true},
		{name: "bad_truncated_float", typ: "Scalars", raw: "5d 0000", invalid: true},
		{name: "bad_wire_type_6", typ: "Scalars", raw: "0e 00", invalid: true},
		{name: "bad_wire_type_7", typ: "Scalars", raw: "0f 00", invalid: true},
		{name: "bad_wire_type_7_unknown_field", typ: "Narrow", raw: "17 00", invalid: true},
		{name: "bad_group_end_without_start", typ: "Scalars", raw: "0c", invalid: true},
		{name: "bad_group_unclosed", typ: "Narrow", raw: "7b 0801", invalid: true},
		{name: "bad_group_mismatched_end", typ: "Narrow", raw: "7b 0801 84 01", invalid: true},
		{name: "bad_field_number_0", typ: "Scalars", raw: "00 01", invalid: true},
		{name: "bad_field_number_0_length", typ: "Narrow", raw: "02 00", invalid: true},
		{name: "bad_utf8_string", typ: "Scalars", raw: "72 02 c328", invalid: true},
		{name: "bad_utf8_surrogate", typ: "Scalars", raw: "72 03 eda080", invalid: true},
		{name: "bad_utf8_overlong", typ: "Scalars", raw: "72 02 c080", invalid: true},
		{name: "bad_utf8_repeated_string", typ: "Repeats", raw: "72 01 ff", invalid: true},
		{name: "bad_utf8_map_key", typ: "Maps", raw: "0a 05 0a01ff 1200", invalid: true},
		{name: "bad_utf8_map_value", typ: "Maps", raw: "0a 05 0a0161 1200 0a 05 0a00 120180", invalid: true},
		{name: "bad_utf8_oneof", typ: "Choice", raw: "1a 01 80", invalid: true},
		{name: "bad_utf8_nested", typ: "Repeats", raw: "8a01 03 1201fe", invalid: true},
		{name: "bad_nested_truncated", typ: "Outer", raw: "0a 03 0a0508", invalid: true},
		{name: "bad_nested_wire_type", typ: "Outer", raw: "0a 02 0f00", invalid: true},
		{name: "bad_packed_truncated_varint", typ: "Repeats", raw: "0a 02 ffff", invalid: true},
		{name: "bad_packed_fixed32_length", typ: "Repeats", raw: "3a 03 010203", invalid: true},
		{name: "bad_packed_double_length", typ: "Repeats", raw: "62 07 00000000000000", invalid: true},
		{name: "bad_map_entry_truncated", typ: "Maps", raw: "0a 03 0a0561", invalid: true},
		{name: "bad_unknown_length_past_end", typ: "Narrow", raw: "a201 05 00", invalid: true},
		{name: "bad_unknown_truncated_fixed64", typ: "Narrow", raw: "19 0000", invalid: true},
	}
}
