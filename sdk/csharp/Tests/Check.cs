using System;

namespace Moonforge.Tests
{
    /// <summary>Counts passed and failed checks and prints failures; the closing line is
    /// "N passed, N failed", which the Go test and CI read.</summary>
    internal sealed class Check
    {
        internal int Passed { get; private set; }

        internal int Failed { get; private set; }

        internal void True(bool ok, string what)
        {
            if (ok)
            {
                Passed++;
                return;
            }
            Failed++;
            Console.WriteLine("FAIL " + what);
        }

        internal void Equal<T>(T want, T have, string what)
        {
            True(Equals(want, have), what + ": want " + want + ", have " + have);
        }

        internal void Fail(string what)
        {
            True(false, what);
        }

        internal int Finish(string suite)
        {
            Console.WriteLine(suite + ": " + Passed + " passed, " + Failed + " failed");
            return Failed == 0 && Passed > 0 ? 0 : 1;
        }
    }
}
