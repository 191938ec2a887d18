using System;
using System.Collections.Generic;

namespace Moonforge.Tests
{
    /// <summary>
    /// The SDK's test programs, run under mono by sdk/csharp/sdk_test.go:
    ///   MoonforgeTests.exe conformance &lt;tests/vectors dir&gt;
    ///   MoonforgeTests.exe client
    ///   MoonforgeTests.exe kcp
    ///   MoonforgeTests.exe e2e &lt;host&gt; &lt;tcp port&gt; &lt;ws port&gt;
    ///   MoonforgeTests.exe e2e-kcp &lt;host&gt; &lt;kcp port&gt;
    ///   MoonforgeTests.exe tls &lt;host&gt; &lt;tls port&gt; &lt;PEM certificate to trust&gt;
    ///   MoonforgeTests.exe chaos &lt;host&gt; &lt;port&gt; &lt;stop file&gt;
    ///   MoonforgeTests.exe failover &lt;host&gt; &lt;dead port&gt; &lt;port&gt; &lt;port&gt; &lt;pid of the first server&gt;
    /// Exit status 0 when every check passed.
    /// </summary>
    internal static class Program
    {
        private static int Main(string[] args)
        {
            if (args.Length == 2 && args[0] == "conformance") return ConformanceTests.Run(args[1]);
            if (args.Length == 1 && args[0] == "client") return ClientTests.Run();
            if (args.Length == 4 && args[0] == "chaos") return ChaosTests.Run(args[1], int.Parse(args[2]), args[3]);
            if (args.Length == 1 && args[0] == "kcp") return KcpTests.Run();
            if (args.Length == 6 && args[0] == "failover") return FailoverTests.Run(args[1], int.Parse(args[2]), int.Parse(args[3]), int.Parse(args[4]), int.Parse(args[5]));
            if (args.Length == 4 && args[0] == "e2e")
            {
                return EndToEndTests.Run(args[1], new KeyValuePair<Transport, int>(Transport.Tcp, int.Parse(args[2])), new KeyValuePair<Transport, int>(Transport.WebSocket, int.Parse(args[3])));
            }
            if (args.Length == 3 && args[0] == "e2e-kcp") return EndToEndTests.Run(args[1], new KeyValuePair<Transport, int>(Transport.Kcp, int.Parse(args[2])));
            if (args.Length == 4 && args[0] == "tls") return TlsTests.Run(args[1], int.Parse(args[2]), args[3]);
            Console.Error.WriteLine("usage: MoonforgeTests.exe conformance <vectors dir> | client | kcp | e2e <host> <tcp port> <ws port> | e2e-kcp <host> <kcp port> | tls <host> <tls port> <cert> | chaos <host> <port> <stop file> | failover <host> <dead port> <port> <port> <pid>");
            return 2;
        }
    }
}
