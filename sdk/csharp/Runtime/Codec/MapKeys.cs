using System.Collections.Generic;

namespace Moonforge
{
    /// <summary>
    /// Map keys in the order protobuf-go's deterministic marshalling writes them: numbers by value,
    /// false before true, strings by their UTF-8 bytes. Generated code calls it.
    /// </summary>
    public static class MapKeys
    {
        /// <summary>Orders int32, sint32 and sfixed32 keys.</summary>
        public static readonly IComparer<int> Int32 = new Int32Order();

        /// <summary>Orders int64, sint64 and sfixed64 keys.</summary>
        public static readonly IComparer<long> Int64 = new Int64Order();

        /// <summary>Orders uint32 and fixed32 keys.</summary>
        public static readonly IComparer<uint> UInt32 = new UInt32Order();

        /// <summary>Orders uint64 and fixed64 keys.</summary>
        public static readonly IComparer<ulong> UInt64 = new UInt64Order();

        /// <summary>Orders bool keys: false first.</summary>
        public static readonly IComparer<bool> Bool = new BoolOrder();

        /// <summary>Orders string keys by their UTF-8 encoding, as Go compares strings.</summary>
        public static readonly IComparer<string> String = new Utf8Order();

        /// <summary>Returns the keys of map sorted with order, in a new list.</summary>
        public static List<TKey> Sorted<TKey, TValue>(Dictionary<TKey, TValue> map, IComparer<TKey> order)
        {
            var keys = new List<TKey>(map.Keys);
            keys.Sort(order);
            return keys;
        }

        private sealed class Int32Order : IComparer<int>
        {
            public int Compare(int x, int y) { return x < y ? -1 : x > y ? 1 : 0; }
        }

        private sealed class Int64Order : IComparer<long>
        {
            public int Compare(long x, long y) { return x < y ? -1 : x > y ? 1 : 0; }
        }

        private sealed class UInt32Order : IComparer<uint>
        {
            public int Compare(uint x, uint y) { return x < y ? -1 : x > y ? 1 : 0; }
        }

        private sealed class UInt64Order : IComparer<ulong>
        {
            public int Compare(ulong x, ulong y) { return x < y ? -1 : x > y ? 1 : 0; }
        }

        private sealed class BoolOrder : IComparer<bool>
        {
            public int Compare(bool x, bool y) { return x == y ? 0 : x ? 1 : -1; }
        }

        // UTF-16 order equals UTF-8 order except that surrogates (U+D800-DFFF, used for code points
        // above U+FFFF) sort below U+E000-FFFF in UTF-16 and above them in UTF-8.
        private sealed class Utf8Order : IComparer<string>
        {
            public int Compare(string x, string y)
            {
                int n = x.Length < y.Length ? x.Length : y.Length;
                for (int i = 0; i < n; i++)
                {
                    int a = x[i], b = y[i];
                    if (a == b) continue;
                    return Fix(a) - Fix(b);
                }
                return x.Length - y.Length;
            }

            private static int Fix(int c)
            {
                if (c < 0xD800) return c;
                return c >= 0xE000 ? c - 0x800 : c + 0x2000;
            }
        }
    }
}
