"""Numbers from class rasters: zonal and scene statistics, metrics, geodesic areas."""
